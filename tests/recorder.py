"""A real paho MQTT 5 client for tests that records what it receives.

    with Recorder(port, "billing", password) as rec:
        rec.subscribe("fabmeter/v1/#")
        rec.wait_for(lambda msgs: len(msgs) >= 3)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    properties: Any


class Recorder:
    """A connected client whose received messages land in ``.messages``."""

    def __init__(
        self, port: int, username: str | None = None, password: str | None = None,
        client_id: str = "", timeout: float = 5.0,
    ) -> None:  # fmt: skip
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if username:
            self.client.username_pw_set(username, password)
        self.port, self.timeout = port, timeout
        self.messages: list[Received] = []
        self.connect_reason: ReasonCode | None = None
        self._lock = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._subacks: list[list[ReasonCode]] = []

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        with self._lock:
            self.connect_reason = reason
            self._lock.notify_all()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, msg.payload, msg.retain, msg.properties))
            self._lock.notify_all()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: list[ReasonCode], props: Any) -> None:
        with self._lock:
            self._subacks.append(codes)
            self._lock.notify_all()

    def connect(self) -> ReasonCode:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        with self._lock:
            self._lock.wait_for(lambda: self.connect_reason is not None, self.timeout)
        assert self.connect_reason is not None, "no CONNACK from the broker"
        return self.connect_reason

    def subscribe(self, topic: str, qos: int = 1) -> list[ReasonCode]:
        count = len(self._subacks)
        self.client.subscribe(topic, qos)
        with self._lock:
            self._lock.wait_for(lambda: len(self._subacks) > count, self.timeout)
            return self._subacks[-1]

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: Properties | None = None) -> None:  # fmt: skip
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(self.timeout)

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float | None = None) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: predicate(self.messages), timeout or self.timeout)

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Recorder:
        self.connect()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.close()


def settle(seconds: float = 0.3) -> None:
    """Give the broker time to route what it will route before asserting that nothing came."""
    time.sleep(seconds)
