from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from billing.config import ConfigError, ServerConfig
from broker.settings import Settings

EXAMPLE = Path(__file__).parents[2] / "deploy" / "server.example.toml"


def _keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in data.items():
        if isinstance(value, dict):
            keys |= _keys(value, f"{prefix}{key}.")
        else:
            keys.add(prefix + key)
    return keys


def _read_names(settings: Settings) -> set[str]:
    names = {settings.name(k) for k in settings._seen}
    for child in settings._children:
        names |= _read_names(child)
    return names


def _with_secrets(tmp_path: Path) -> Path:
    """The example, copied beside the secret files it names."""
    (tmp_path / "secrets").mkdir()
    for name in ("pepper", "secret_key", "billing.password", "ledger.key", "archive.key"):
        (tmp_path / "secrets" / name).write_text(f"{name}-value\n")
    config = tmp_path / "server.toml"
    config.write_text(EXAMPLE.read_text())
    return config


def test_example_config_loads_and_documents_every_setting(tmp_path: Path) -> None:
    path = _with_secrets(tmp_path)
    settings = Settings.load(path, environ={})
    config = ServerConfig.from_settings(settings)
    settings.finish()
    sections = {"mqtt", "printer", "organisation", "billing", "smtp"}
    read = _read_names(settings) - sections
    documented = _keys(tomllib.loads(EXAMPLE.read_text()))
    assert read - documented == set(), "settings missing from deploy/server.example.toml"
    assert config.pepper == "pepper-value"
    assert config.mqtt.password == "billing.password-value"
    assert config.organisation.legal_mention == "TVA non applicable, art. 293 B du CGI"
    assert config.database_url == "sqlite:////var/lib/fabmeter/fabmeter.db"  # where the units may write


def test_environment_overrides_the_database_url(tmp_path: Path) -> None:
    url = "postgresql+psycopg://fab@db.example/fab"
    config = ServerConfig.from_file(_with_secrets(tmp_path), environ={"FABMETER_DATABASE_URL": url})
    assert config.database_url == url


def test_minimal_config_has_sane_defaults(tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text("p")
    path = tmp_path / "s.toml"
    path.write_text('pepper_file = "pepper"\n[organisation]\nname = "L"\naddress = "A"\nsiret = "1"\n'
                    'tax_regime = "vat"\nvat_rate = 5.5\n')
    config = ServerConfig.from_file(path, environ={})
    assert config.printer.kind == "none"
    assert config.mqtt.session_expiry_s >= 86400
    assert config.organisation.vat_rate == Decimal("5.50")
    assert config.billing.lockout_failures == 5
    assert config.secret_key is None


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ('[printer]\nkind = "laser"\n', "'printer.kind' must be one of"),
        ('[printer]\nkind = "network"\n', "'printer.host' is needed"),
        ('[billing]\npin_digits = 4\n', "'billing.pin_digits' must be at least 6"),
        ('[mqtt]\nprot = 1\n', "'mqtt.prot' is not a known setting"),
        ('[smtp]\nhost = "mail.example.org"\n', "'smtp.from' must be the address"),
        ('[smtp]\nhost = "m"\nfrom = "a@b"\nuser = "u"\npassword_file = ""\n', "'smtp.password_file' is needed"),
        ('[smtp]\nhost = "m"\nfrom = "a@b"\nuser = "u"\npassword_file = "nope"\n', "'smtp.password_file' names"),
        ('[smtp]\nhost = "m"\nfrom = "a@b"\nport = 70000\n', "'smtp.port' must be a TCP port"),
        ('[printer]\nclaim_timeout_s = 8\n', "'printer.claim_timeout_s' must be at least 10"),
        ('[printer]\ntimeout_s = 30\nclaim_timeout_s = 50\n', "'printer.claim_timeout_s' must be more than twice"),
    ],
)
def test_wrong_settings_name_the_setting_and_file(tmp_path: Path, extra: str, says: str) -> None:
    (tmp_path / "pepper").write_text("p")
    path = tmp_path / "s.toml"
    path.write_text('pepper_file = "pepper"\n' + extra + '[organisation]\nname = "L"\naddress = "A"\nsiret = "1"\n')
    with pytest.raises(ConfigError) as err:
        ServerConfig.from_file(path, environ={})
    assert says in str(err.value) and str(path) in str(err.value)


def test_missing_pepper_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('pepper_file = "nope"\n[organisation]\nname = "L"\naddress = "A"\nsiret = "1"\n')
    with pytest.raises(ConfigError, match="pepper_file"):
        ServerConfig.from_file(path, environ={})


def test_smtp_settings_with_a_password_file(tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text("p")
    (tmp_path / "smtp.password").write_text("s3cret\n")
    path = tmp_path / "s.toml"
    path.write_text('pepper_file = "pepper"\n[smtp]\nhost = "mail.example.org"\nuser = "fablab"\n'
                    'password_file = "smtp.password"\nfrom = "fablab@example.org"\n'
                    '[organisation]\nname = "L"\naddress = "A"\nsiret = "1"\n')
    smtp = ServerConfig.from_file(path, environ={}).smtp
    assert (smtp.host, smtp.port, smtp.user, smtp.password, smtp.sender, smtp.starttls) == (
        "mail.example.org", 587, "fablab", "s3cret", "fablab@example.org", True)
    (tmp_path / "x").mkdir()
    assert ServerConfig.from_file(_with_secrets(tmp_path / "x"), environ={}).smtp.host is None
