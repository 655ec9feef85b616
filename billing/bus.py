"""Billing's MQTT 5 connections: a persistent one for events, a clean one for the rest.

    events = Bus(config.mqtt, "billing", persistent=True, manual_ack=True)
    events.start(on_message, subscriptions=[(topics.pattern("events"), 1)])
    events.publish(topic, payload, retain=True); events.ack(mid)

The persistent session (``clean_start`` false, a session expiry of days) makes the broker keep
every event while billing is down; with ``manual_ack`` an event is PUBACKed only after it is
committed, so a crash before the commit gets it delivered again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from billing.config import BillingMqtt
from broker.connection import new_client

log = logging.getLogger(__name__)
OnMessage = Callable[[mqtt.MQTTMessage], None]


class Bus:
    """One paho client with its own network thread; callbacks never raise into paho."""

    def __init__(self, config: BillingMqtt, client_id: str, *, persistent: bool, manual_ack: bool = False) -> None:
        self.config = config
        self.persistent = persistent
        self.connected = threading.Event()
        self._subscriptions: list[tuple[str, int]] = []
        self._on_message: OnMessage | None = None
        self.client = new_client(config, client_id, manual_ack=manual_ack)
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message

    def start(self, on_message: OnMessage, subscriptions: list[tuple[str, int]]) -> None:
        self._on_message = on_message
        self._subscriptions = subscriptions
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self.persistent:
            properties.SessionExpiryInterval = self.config.session_expiry_s
        self.client.connect_async(
            self.config.host, self.config.port, keepalive=self.config.keepalive,
            clean_start=not self.persistent, properties=properties,
        )  # fmt: skip
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _connected(self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker %s:%s refused billing: %s", self.config.host, self.config.port, reason)
            return
        if self._subscriptions:
            client.subscribe(self._subscriptions)
        self.connected.set()
        log.info("connected to %s:%s", self.config.host, self.config.port)

    def _disconnected(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.connected.clear()
        log.warning("disconnected from %s:%s (%s)", self.config.host, self.config.port, reason)

    def _message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if self._on_message is None:
            return
        try:
            self._on_message(message)
        except Exception:  # noqa: BLE001 - a callback must never raise into paho's thread
            log.exception("message on %s could not be handed over", message.topic)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False,
                properties: Properties | None = None) -> None:  # fmt: skip
        self.client.publish(topic, payload, qos=1, retain=retain, properties=properties)

    def ack(self, mid: int) -> None:
        self.client.ack(mid, 1)
