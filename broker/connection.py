"""How every fabmeter process reaches the broker: the ``[mqtt]`` settings and the paho client they make.

    config = read_mqtt(settings.section("mqtt"))
    client = new_client(config, "fabmeter-pi-printer")     # MQTT 5, credentials and TLS set
    client.connect_async(config.host, config.port, keepalive=config.keepalive)
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from broker.settings import Settings


@dataclass(frozen=True)
class MqttConfig:
    """The broker's address and how to log in (TLS and a password file in production)."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    keepalive: int = 30
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_insecure: bool = False  # skips the host name check: never in production


Config = TypeVar("Config", bound=MqttConfig)


def read_mqtt(s: Settings, kind: type[Config] = MqttConfig, **extra: Any) -> Config:  # type: ignore[assignment]
    """The common keys of an ``[mqtt]`` section; a process adds its own keys through ``extra``."""
    d = MqttConfig()
    return kind(
        host=s.text("host", d.host),
        port=s.integer("port", d.port, minimum=1),
        username=s.text("username", None),
        password=s.secret("password", None),
        keepalive=s.integer("keepalive", d.keepalive, minimum=5),
        tls=s.boolean("tls", d.tls),
        tls_ca_file=s.path_value("tls_ca_file", None),
        tls_insecure=s.boolean("tls_insecure", d.tls_insecure),
        **extra,
    )


def new_client(config: MqttConfig, client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    """A paho MQTT 5 client with the configured credentials and TLS; callbacks are the caller's."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack
    )
    if config.username:
        client.username_pw_set(config.username, config.password)
    if config.tls:
        client.tls_set(ca_certs=str(config.tls_ca_file) if config.tls_ca_file else None,
                       cert_reqs=ssl.CERT_REQUIRED)  # fmt: skip
        client.tls_insecure_set(config.tls_insecure)
    return client
