"""`fabmeter broker config` against the real mosquitto: passwords and ACL do what they say."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker import topics
from broker.errors import RegistryError
from broker.messages import MAX_PAYLOAD_BYTES
from broker.registry import read_registry
from broker.services import PrivateMosquitto, free_port
from fabmeter import main
from tests.recorder import Recorder, settle

SITE = """
[[agents]]
id = "pi-printer"
machines = ["printer-1"]

[[agents]]
id = "pi-laser"
machines = ["laser-1", "sewing-1"]
"""


def generate(tmp_path: Path, port: int) -> Path:
    registry = tmp_path / "site.toml"
    registry.write_text(SITE)
    out = tmp_path / "broker"
    result = CliRunner().invoke(
        main,
        ["broker", "config", "--registry", str(registry), "--out", str(out),
         "--listen", f"127.0.0.1:{port}", "--run-as", getpass.getuser()],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    out = generate(tmp_path, port)
    broker = PrivateMosquitto(tmp_path / "run", port=port, conf=out / "mosquitto.conf")
    broker.start()
    yield out, port
    broker.kill()


def password(out: Path, user: str) -> str:
    return (out / "secrets" / f"{user}.password").read_text().strip()


def client(site: tuple[Path, int], user: str) -> Recorder:
    out, port = site
    rec = Recorder(port, user, password(out, user))
    assert rec.connect() == "Success"
    return rec


def test_files_are_written_and_passwords_kept_on_rerun(tmp_path: Path) -> None:
    out = generate(tmp_path, 1883)
    before = password(out, "pi-laser")
    assert {p.name for p in (out / "secrets").iterdir()} == {
        "billing.password", "pi-printer.password", "pi-laser.password"}  # fmt: skip
    conf = (out / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "max_queued_messages 1000000" in conf
    assert "message_size_limit 65536" in conf
    assert (out / "passwd").read_text().count("$7$101$") == 3
    generate(tmp_path, 1883)
    assert password(out, "pi-laser") == before


def test_wrong_password_is_refused(site: tuple[Path, int]) -> None:
    rec = Recorder(site[1], "pi-printer", "not-the-password")
    try:
        assert rec.connect() in ("Bad user name or password", "Not authorized")
    finally:
        rec.close()


def test_anonymous_is_refused(site: tuple[Path, int]) -> None:
    rec = Recorder(site[1])
    try:
        assert rec.connect() != "Success"
    finally:
        rec.close()


def test_billing_sees_events_but_not_what_an_agent_fakes_for_another(site: tuple[Path, int]) -> None:
    billing = client(site, "billing")
    printer = client(site, "pi-printer")
    try:
        billing.subscribe("fabmeter/v1/#")
        printer.publish(topics.agent_events("pi-laser"), b"forged")
        printer.publish(topics.machine_state("laser-1"), b"forged")
        printer.publish(topics.agent_events("pi-printer"), b"genuine")
        printer.publish(topics.machine_state("printer-1"), b"genuine-state")
        assert billing.wait_for(lambda msgs: len(msgs) >= 2)
        settle()
        assert sorted(m.payload for m in billing.messages) == [b"genuine", b"genuine-state"]
    finally:
        billing.close()
        printer.close()


def test_the_broker_drops_a_payload_over_the_size_limit(site: tuple[Path, int]) -> None:
    """Mosquitto's ``message_size_limit``: a larger publish is never stored nor forwarded (Mosquitto
    2.0 also drops the connection of an MQTT 5 client that sends one); the limit itself passes."""
    billing = client(site, "billing")
    printer = client(site, "pi-printer")
    try:
        billing.subscribe("fabmeter/v1/#")
        printer.client.publish(topics.agent_events("pi-printer"), b"x" * (MAX_PAYLOAD_BYTES + 1), qos=1)
        settle(0.5)
        printer.close()
        printer = client(site, "pi-printer")
        printer.publish(topics.agent_events("pi-printer"), b"y" * MAX_PAYLOAD_BYTES)
        assert billing.wait_for(lambda msgs: len(msgs) >= 1)
        settle()
        assert [m.payload[:1] + str(len(m.payload)).encode() for m in billing.messages] == [b"y65536"]
    finally:
        billing.close()
        printer.close()


def test_an_agent_cannot_read_another_agents_replies(site: tuple[Path, int]) -> None:
    billing = client(site, "billing")
    printer = client(site, "pi-printer")
    laser = client(site, "pi-laser")
    try:
        for kind in ("ack", "auth_resp", "allowlist", "cmd"):
            printer.subscribe(topics.build(kind, "pi-laser"))
            laser.subscribe(topics.build(kind, "pi-laser"))
        printer.subscribe("fabmeter/v1/#")
        for kind in ("ack", "auth_resp", "allowlist", "cmd"):
            billing.publish(topics.build(kind, "pi-laser"), kind.encode(), retain=kind == "ack")
        assert laser.wait_for(lambda msgs: len(msgs) >= 4)
        settle()
        assert printer.messages == []
        assert sorted(m.payload for m in laser.messages) == [b"ack", b"allowlist", b"auth_resp", b"cmd"]
    finally:
        for c in (billing, printer, laser):
            c.close()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[agents]]\nid = 'Pi 1'\n", "must be lowercase"),
        ("[[agents]]\nid = 'billing'\n", "reserved"),
        ("[[agents]]\nid='a'\nmachines=['m']\n[[agents]]\nid='b'\nmachines=['m']\n", "belongs to both"),
        ("agents = 3", "at least one"),
        ("[[agents]]\nid='a'\nmachine=['m']\n", "unknown setting 'machine'"),
        ("[[agents]\n", "not valid TOML"),
    ],
)
def test_bad_registry_says_what_is_wrong(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(text)
    with pytest.raises(RegistryError, match=says):
        read_registry(path)


def test_cli_reports_a_missing_registry_without_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["broker", "config", "--registry", str(tmp_path / "nope.toml"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "cannot read registry" in result.output
