from __future__ import annotations

from pathlib import Path

import pytest

from broker.settings import ConfigError, Settings


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "x.toml"
    path.write_text(text)
    return Settings.load(path, environ=environ or {})


def test_typed_values_sections_and_environment_override(tmp_path: Path) -> None:
    s = load(tmp_path, 'name = "a"\n[mqtt]\nport = 1883\ntls = false\n', {"FABMETER_MQTT_PORT": "8883"})
    assert s.text("name") == "a"
    mqtt = s.section("mqtt")
    assert mqtt.integer("port") == 8883
    assert mqtt.boolean("tls") is False
    assert mqtt.text("host", "localhost") == "localhost"
    s.finish()


@pytest.mark.parametrize(
    ("text", "read", "says"),
    [
        ("", lambda s: s.text("agent_id"), "setting 'agent_id' is missing"),
        ("[mqtt]\nport = 'x'\n", lambda s: s.section("mqtt").integer("port"), "'mqtt.port' must be a whole number"),
        ("[mqtt]\nport = 0\n", lambda s: s.section("mqtt").integer("port", minimum=1), "at least 1"),
        ("kind = 'zz'\n", lambda s: s.choice("kind", ("a", "b")), "must be one of a, b"),
        ("[[machines]]\nid = 3\n", lambda s: s.tables("machines")[0].text("id"), r"'machines\[0\].id' must be a string"),
        ("pw_file = 'missing'\n", lambda s: s.secret("pw"), "'pw_file' names .*missing, which cannot be read"),
    ],
)
def test_errors_name_the_setting_and_the_file(tmp_path: Path, text: str, read, says: str) -> None:  # type: ignore[no-untyped-def]
    s = load(tmp_path, text)
    with pytest.raises(ConfigError, match=says) as info:
        read(s)
    assert str(tmp_path / "x.toml") in str(info.value)


def test_unknown_keys_are_refused_at_finish(tmp_path: Path) -> None:
    s = load(tmp_path, "[mqtt]\nhots = 'x'\n")
    s.section("mqtt").text("host", None)
    with pytest.raises(ConfigError, match="'mqtt.hots' is not a known setting"):
        s.finish()


def test_secret_from_file_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    assert load(tmp_path, 'password_file = "pw"\n').secret("password") == "s3cret"


def test_broken_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path, "a = [")


def test_the_mqtt_section_is_read_once_for_every_process(tmp_path: Path) -> None:
    from billing.config import BillingMqtt
    from broker.connection import MqttConfig, new_client, read_mqtt

    (tmp_path / "pw").write_text("s3cret\n")
    text = '[mqtt]\nhost = "broker.lan"\nusername = "billing"\npassword_file = "pw"\ntls_insecure = true\nclient_id = "b2"\n'
    s = load(tmp_path, text, {"FABMETER_MQTT_PORT": "8883"}).section("mqtt")
    billing = read_mqtt(s, BillingMqtt, client_id=s.text("client_id"))
    s.finish()
    assert (billing.host, billing.port, billing.password, billing.tls_insecure, billing.client_id) == (
        "broker.lan", 8883, "s3cret", True, "b2")  # fmt: skip
    with pytest.raises(ConfigError, match="client_id"):  # a key only billing knows is an error elsewhere
        agent = load(tmp_path, text).section("mqtt")
        read_mqtt(agent)
        agent.finish()
    client = new_client(MqttConfig(username="pi-laser", password="pw"), "fabmeter-pi-laser", manual_ack=True)
    assert (client._username, client._password, client._manual_ack) == (b"pi-laser", b"pw", True)
