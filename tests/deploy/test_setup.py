"""`fabmeter setup DIR` makes what deploy/server.example.toml names, where it names it, and the
operator's steps of the README ("Setting up by hand") work with those files: the broker runs from
the generated mosquitto.conf, billing's configuration loads its secrets, the site file loads."""

from __future__ import annotations

import configparser
import getpass
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from billing.config import ServerConfig
from broker.services import PrivateMosquitto, free_port
from fabmeter import main

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def setup(folder: Path, port: int) -> str:
    result = CliRunner().invoke(main, ["setup", str(folder), "--registry", str(DEPLOY / "site.example.toml"),
                                       "--listen", f"127.0.0.1:{port}", "--run-as", getpass.getuser()])  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def server_toml(folder: Path) -> Path:
    """The example, as the README says: copied into the folder, the database moved for the test."""
    text = (DEPLOY / "server.example.toml").read_text()
    text = text.replace("sqlite:////var/lib/fabmeter/fabmeter.db", f"sqlite:///{folder / 'fabmeter.db'}")
    text = text.replace("/var/lib/fabmeter/ledger.anchors", str(folder / "ledger.anchors"))
    path = folder / "server.toml"
    path.write_text(text)
    return path


def connects(port: int, user: str, password: str) -> bool:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{user}", protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    try:
        return bool(client.connect("127.0.0.1", port, keepalive=5) == 0 and client.loop(timeout=2) == 0
                    and client.is_connected())  # fmt: skip
    finally:
        client.disconnect()


def test_setup_makes_the_files_the_example_config_names_and_the_broker_accepts_them(tmp_path: Path) -> None:
    folder, port = tmp_path / "etc-fabmeter", free_port()
    output = setup(folder, port)
    assert "copy deploy/server.example.toml" in output
    config = ServerConfig.from_file(server_toml(folder), environ={})
    secrets = folder / "secrets"
    assert config.pepper == (secrets / "pepper").read_text().strip() and len(config.pepper) >= 40
    assert config.secret_key == (secrets / "secret_key").read_text().strip()
    assert config.ledger_key and (secrets / "ledger.key").read_text().strip()
    assert config.mqtt.username == "billing"
    assert config.mqtt.password == (secrets / "billing.password").read_text().strip()
    assert config.archive_key and "PRIVATE KEY" in config.archive_key  # Ed25519, PEM: signs the archive
    assert {p.name for p in secrets.iterdir()} == {"pepper", "secret_key", "ledger.key", "archive.key",
                                                   "billing.password", "pi-printer.password",
                                                   "pi-laser.password"}  # fmt: skip
    assert all(p.stat().st_mode & 0o077 == 0 for p in secrets.iterdir())  # no --group: root alone
    conf = (folder / "mosquitto" / "mosquitto.conf").read_text()
    assert "DESIGN.md" not in conf and "README: Broker configuration" in conf
    assert "## Broker configuration" in (ROOT / "README.md").read_text()
    for path in re.findall(r"^(?:password_file|acl_file) (.+)$", conf, re.M):
        assert Path(path).is_file()
    with PrivateMosquitto(tmp_path / "run", port=port, conf=folder / "mosquitto" / "mosquitto.conf"):
        assert connects(port, "billing", config.mqtt.password or "")
        assert connects(port, "pi-laser", (secrets / "pi-laser.password").read_text().strip())
        assert not connects(port, "pi-laser", "guessed")


def test_setup_again_keeps_every_secret(tmp_path: Path) -> None:
    folder = tmp_path / "etc-fabmeter"
    setup(folder, 1883)
    before = {p.name: p.read_text() for p in (folder / "secrets").iterdir()}
    setup(folder, 1883)
    assert {p.name: p.read_text() for p in (folder / "secrets").iterdir()} == before


def test_the_readme_steps_load_the_site_into_the_configured_ledger(tmp_path: Path) -> None:
    folder = tmp_path / "etc-fabmeter"
    setup(folder, 1883)
    config = server_toml(folder)
    runner = CliRunner()
    loaded = runner.invoke(main, ["admin", "load", str(DEPLOY / "site.example.toml"), "--config", str(config)])
    assert loaded.exit_code == 0 and "17 change(s)" in loaded.output, loaded.output
    user = runner.invoke(main, ["admin", "create-user", "--config", str(config), "--username", "camille",
                                "--role", "admin", "--password-file", "-"], input="un long mot de passe\n")  # fmt: skip
    assert user.exit_code == 0, user.output


def test_the_example_database_and_anchors_are_where_the_units_may_write_and_the_backup_reads() -> None:
    example = tomllib.loads((DEPLOY / "server.example.toml").read_text())
    database = Path(example["database_url"].removeprefix("sqlite:///"))
    anchors = Path(example["anchor_file"])
    for name in ("fabmeter-billing.service", "fabmeter-dashboard.service"):
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.read(DEPLOY / "systemd" / name)
        writable = [Path(p) for p in unit["Service"]["ReadWritePaths"].split()]
        assert any(database.is_relative_to(w) and anchors.is_relative_to(w) for w in writable), name
    backup = (DEPLOY / "systemd" / "fabmeter-backup.service").read_text()
    assert f" {database} " in backup and str(anchors) in backup


def test_install_script_uses_setup_and_the_readme_names_the_same_folder() -> None:
    script = (DEPLOY / "install-server.sh").read_text()
    assert "fabmeter setup /etc/fabmeter --registry" in script
    assert "mosquitto/secrets" not in script + (ROOT / "README.md").read_text()
    if shutil.which("sh"):
        assert subprocess.run(["sh", "-n", str(DEPLOY / "install-server.sh")]).returncode == 0


@pytest.mark.parametrize("args", [["--tls-cert", "c.pem"], ["--listen", "nowhere"]])
def test_setup_refuses_bad_options(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["setup", str(tmp_path), "--registry", str(DEPLOY / "site.example.toml"), *args])
    assert result.exit_code != 0 and ("--tls-cert and --tls-key go together" in result.output
                                      or "must be HOST:PORT" in result.output)  # fmt: skip
