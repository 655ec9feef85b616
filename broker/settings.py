"""Reading a process's TOML configuration with errors that name the setting and the file.

Each process kind builds its own frozen dataclass from a ``Settings`` view:

    s = Settings.load(Path("agent.toml"), environ=os.environ, env_prefix="FABMETER_")
    agent_id = s.text("agent_id")                 # FABMETER_AGENT_ID overrides it
    port = s.section("mqtt").integer("port", 1883)
    s.finish()                                    # any key nobody asked for is an error

Secrets are read from files (``password_file = "/etc/fabmeter/secrets/pi-printer.password"``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from broker.errors import BrokerError


class ConfigError(BrokerError, ValueError):
    """A configuration file that is missing, unreadable, or has a missing or wrong setting."""


_MISSING: Any = object()


class Settings:
    """A view on one table of a TOML file that remembers which keys were read."""

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        path: Path,
        environ: Mapping[str, str],
        env_prefix: str,
        where: str = "",
    ) -> None:
        self._data = data
        self.path = path
        self._environ = environ
        self._prefix = env_prefix
        self._where = where
        self._seen: set[str] = set()
        self._children: list[Settings] = []

    @classmethod
    def load(
        cls, path: Path, *, environ: Mapping[str, str] = os.environ, env_prefix: str = "FABMETER_"
    ) -> Settings:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as err:
            raise ConfigError(f"configuration file {path} does not exist") from err
        except OSError as err:
            raise ConfigError(f"cannot read configuration file {path}: {err.strerror}") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML: {err}") from err
        return cls(data, path=path, environ=environ, env_prefix=env_prefix)

    # -- locating -----------------------------------------------------------------------

    def name(self, key: str) -> str:
        return f"{self._where}{key}"

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: setting '{self.name(key)}' {problem}")

    def _env_name(self, key: str) -> str:
        return self._prefix + self.name(key).replace(".", "_").replace("-", "_").upper()

    def _raw(self, key: str, default: Any) -> tuple[Any, bool]:
        """The value and whether it came from the environment (then it is a string)."""
        self._seen.add(key)
        env = self._environ.get(self._env_name(key)) if "[" not in self._where else None
        if env is not None:
            return env, True
        if key in self._data:
            return self._data[key], False
        if default is _MISSING:
            raise self.error(key, "is missing")
        return default, False

    # -- typed getters ------------------------------------------------------------------

    def text(self, key: str, default: Any = _MISSING) -> Any:
        value, _ = self._raw(key, default)
        if value is not None and not isinstance(value, str):
            raise self.error(key, f"must be a string, not {value!r}")
        return value

    def integer(self, key: str, default: Any = _MISSING, *, minimum: int | None = None) -> Any:
        value, from_env = self._raw(key, default)
        if from_env:
            try:
                value = int(value)
            except ValueError:
                raise self.error(key, f"must be a whole number, not {value!r}") from None
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.error(key, f"must be a whole number, not {value!r}")
        if value is not None and minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, not {value}")
        return value

    def number(self, key: str, default: Any = _MISSING, *, minimum: float | None = None) -> Any:
        value, from_env = self._raw(key, default)
        if from_env:
            try:
                value = float(value)
            except ValueError:
                raise self.error(key, f"must be a number, not {value!r}") from None
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise self.error(key, f"must be a number, not {value!r}")
        if value is not None and minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, not {value}")
        return None if value is None else float(value)

    def boolean(self, key: str, default: Any = _MISSING) -> Any:
        value, from_env = self._raw(key, default)
        if from_env:
            lowered = value.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no"):
                raise self.error(key, f"must be true or false, not {value!r}")
            value = lowered in ("1", "true", "yes")
        if value is not None and not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: Any = _MISSING) -> Any:
        value = self.text(key, default)
        if value is not None and value not in options:
            raise self.error(key, f"must be one of {', '.join(options)}, not {value!r}")
        return value

    def strings(self, key: str, default: Any = _MISSING) -> Any:
        value, from_env = self._raw(key, default)
        if from_env:
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"must be a list of strings, not {value!r}")
        return tuple(value)

    def path_value(self, key: str, default: Any = _MISSING) -> Any:
        """A path; relative paths are relative to the configuration file's folder."""
        value = self.text(key, default)
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.path.parent / path)

    def secret(self, key: str, default: Any = _MISSING) -> Any:
        """The contents of the file named by ``<key>_file``, stripped, or None."""
        file_key = f"{key}_file"
        path = self.path_value(file_key, default)
        if path is None:
            return None
        try:
            value = path.read_text().strip()
        except OSError as err:
            raise self.error(file_key, f"names {path}, which cannot be read: {err.strerror}") from err
        if not value:
            raise self.error(file_key, f"names {path}, which is empty")
        return value

    # -- nesting ------------------------------------------------------------------------

    def section(self, key: str, *, required: bool = False) -> Settings:
        """A sub-table (``[mqtt]``); an absent optional table reads as empty."""
        self._seen.add(key)
        data = self._data.get(key)
        if data is None:
            if required:
                raise self.error(key, "is missing (a [" + self.name(key) + "] table)")
            data = {}
        if not isinstance(data, dict):
            raise self.error(key, "must be a table")
        return self._child(data, f"{self.name(key)}.")

    def tables(self, key: str) -> list[Settings]:
        """An array of tables (``[[machines]]``)."""
        self._seen.add(key)
        data = self._data.get(key, [])
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise self.error(key, "must be an array of tables ([[" + self.name(key) + "]])")
        return [self._child(d, f"{self.name(key)}[{i}].") for i, d in enumerate(data)]

    def _child(self, data: Mapping[str, Any], where: str) -> Settings:
        child = Settings(
            data, path=self.path, environ=self._environ, env_prefix=self._prefix, where=where
        )
        self._children.append(child)
        return child

    def has(self, key: str) -> bool:
        return key in self._data

    def finish(self) -> None:
        """Refuse any key that no getter asked for: a typo must not pass silently."""
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            raise self.error(unknown[0], "is not a known setting (a typo?)")
        for child in self._children:
            child.finish()
