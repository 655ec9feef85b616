"""The agent's configuration: the example file loads, documents every setting, and bad files fail clearly."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent import config as agent_config
from agent.config import AgentConfig, ConfigError
from broker.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "agent.example.toml"


def example_copy(tmp_path: Path) -> Path:
    path = tmp_path / "agent.toml"
    shutil.copy(EXAMPLE, path)
    (tmp_path / "secrets").mkdir()
    for name in ("pi-printer.password", "octoprint.key", "moonraker.key"):
        (tmp_path / "secrets" / name).write_text(f"secret-{name}\n")
    return path


def test_example_config_loads(tmp_path: Path) -> None:
    config = AgentConfig.from_file(example_copy(tmp_path), environ={})
    assert config.agent_id == "pi-printer"
    assert config.mqtt.password == "secret-pi-printer.password"
    assert [m.driver for m in config.machines] == ["octoprint", "moonraker", "marlin", "grbl", "gpio"]
    assert config.machine("printer-1").api_key == "secret-octoprint.key"
    assert config.machine("laser-1").kind == "relay" and config.machine("printer-3").kind == "printer"
    assert config.machine("laser-1").interlock_pin == "GPIO17"
    assert config.outbox_path == tmp_path / "fabmeter-agent.db"
    assert config.readers[2].row_pins == ("GPIO5", "GPIO6", "GPIO13", "GPIO19")


class RecordingSettings(Settings):
    """Settings that note every key the loader asks for and every key the file has."""

    asked: set[str] = set()
    present: set[str] = set()

    def _raw(self, key: str, default: Any) -> tuple[Any, bool]:
        RecordingSettings.asked.add(re.sub(r"\[\d+\]", "[]", self.name(key)))
        if self.has(key):
            RecordingSettings.present.add(re.sub(r"\[\d+\]", "[]", self.name(key)))
        return super()._raw(key, default)

    def _child(self, data: Any, where: str) -> Settings:
        child = RecordingSettings(
            data, path=self.path, environ=self._environ, env_prefix=self._prefix, where=where
        )
        self._children.append(child)
        return child


def test_example_documents_every_setting_the_loader_knows(tmp_path: Path) -> None:
    settings = RecordingSettings.load(example_copy(tmp_path), environ={})
    agent_config.from_settings(settings)
    settings.finish()
    # demo-only settings are documented as commented-out lines
    commented = {f"machines[].{k}" for k in re.findall(r"^# (\w+) = ", EXAMPLE.read_text(), re.M)}
    assert RecordingSettings.asked - RecordingSettings.present - commented == set()
    assert "machines[].stretch_s" in RecordingSettings.asked


def test_environment_overrides_a_setting(tmp_path: Path) -> None:
    config = AgentConfig.from_file(example_copy(tmp_path), environ={"FABMETER_MQTT_HOST": "broker.lan"})
    assert config.mqtt.host == "broker.lan"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('driver = "gpio"', 'driver = "gpoi"'), "setting 'machines[4].driver' must be one of"),
        (("checkpoint_s = 45", "checkpoint_s = 5"), "setting 'agent.checkpoint_s' must be between 30"),
        (("off_s = 5.0", "off_s = 5.0\nof_s = 1"), "setting 'machines[4].of_s' is not a known"),
        (('agent_id = "pi-printer"', 'agent_id = "Pi Printer"'), "setting 'agent_id' must be"),
        (('id = "sewing-1"', 'id = "laser-1"'), "repeats machine id 'laser-1'"),
        (('machine = "sewing-1"', 'machine = "nowhere"'), "setting 'readers[2].machine' names 'nowhere'"),
        (("port = 1883", 'port = "1883"'), "setting 'mqtt.port' must be a whole number"),
    ],
)
def test_bad_setting_names_setting_and_file(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = example_copy(tmp_path)
    path.write_text(path.read_text().replace(*change, 1))
    with pytest.raises(ConfigError) as err:
        AgentConfig.from_file(path, environ={})
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_secret_file_is_named(tmp_path: Path) -> None:
    path = example_copy(tmp_path)
    (tmp_path / "secrets" / "octoprint.key").unlink()
    with pytest.raises(ConfigError, match=r"machines\[0\].api_key_file' names .*octoprint.key"):
        AgentConfig.from_file(path, environ={})


@pytest.mark.parametrize("content", [None, "agent_id = [unclosed\n"])
def test_cli_exits_non_zero_on_unreadable_config(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "agent.toml"
    if content is not None:
        path.write_text(content)
    run = subprocess.run(
        [sys.executable, "-m", "fabmeter", "agent", "--config", str(path)],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert run.returncode != 0
    assert str(path) in run.stderr
    assert "Traceback" not in run.stderr
