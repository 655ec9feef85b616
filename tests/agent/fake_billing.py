"""The test acting as billing: collects usage events, acks them (retained), asks for gaps again."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import paho.mqtt.client as mqtt

from broker import messages, topics
from broker.messages import Ack, AuthRequest, AuthResponse, Command, UsageEvent


class FakeBilling:
    """Subscribes to one agent's events; acks the highest contiguous seq, like billing does.

        billing = FakeBilling(port, "pi-test").start()
        billing.wait_for(lambda: billing.contiguous() >= 100)
    """

    def __init__(self, port: int, agent: str, *, ack: bool = True, gap_wait_s: float = 0.5) -> None:
        self.port, self.agent, self.ack = port, agent, ack
        self.gap_wait_s = gap_wait_s
        self.events: dict[int, UsageEvent] = {}
        self.payloads: dict[int, bytes] = {}
        self.deliveries: dict[int, int] = defaultdict(int)
        self.stream: str | None = None
        self.auth_answer: AuthResponse | None = None  # when set, auth requests get this answer
        self.auth_requests: list[AuthRequest] = []
        self.bridged = False  # answer as if through an MQTT 3.1.1 bridge (no properties)
        self._lock = threading.Lock()
        self._acked = 0
        self._gap_since: float | None = None
        self._stop = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"billing-{agent}",
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 0.5)  # type: ignore[arg-type]
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def start(self) -> FakeBilling:
        self.client.connect_async("127.0.0.1", self.port)
        self.client.loop_start()
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(topics.agent_events(self.agent), qos=1)
        client.subscribe(topics.auth_req(self.agent), qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if topics.parse(msg.topic).kind == "auth_req":
            self._answer(msg)
            return
        event = messages.decode(UsageEvent, msg.payload)
        with self._lock:
            self.stream = event.stream
            if event.seq in self.payloads:
                assert self.payloads[event.seq] == msg.payload, "a duplicate must be the same event"
            self.events[event.seq] = event
            self.payloads[event.seq] = msg.payload
            self.deliveries[event.seq] += 1

    def _answer(self, msg: mqtt.MQTTMessage) -> None:
        request = messages.decode(AuthRequest, msg.payload)
        self.auth_requests.append(request)
        if self.auth_answer is None:
            return
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.PUBLISH)
        answer = AuthResponse(**{**self.auth_answer.__dict__, "session": request.session})
        if not self.bridged:
            props.CorrelationData = msg.properties.CorrelationData  # type: ignore[union-attr]
            self.client.publish(msg.properties.ResponseTopic, messages.encode(answer), qos=1, properties=props)  # type: ignore[union-attr]
        else:  # what crosses an MQTT 3.1.1 bridge: no properties at all
            self.client.publish(topics.auth_resp(self.agent), messages.encode(answer), qos=1)

    def contiguous(self) -> int:
        with self._lock:
            n = 0
            while n + 1 in self.events:
                n += 1
            return n

    def _tick(self) -> None:
        while not self._stop.wait(0.1):
            upto = self.contiguous()
            with self._lock:
                highest = max(self.events, default=0)
            if self.ack and self.stream and upto > self._acked:
                self._acked = upto
                ack = Ack(stream=self.stream, upto=upto)
                self.client.publish(topics.agent_ack(self.agent), messages.encode(ack), qos=1, retain=True)
            self._check_gap(upto, highest)

    def _check_gap(self, upto: int, highest: int) -> None:
        if highest <= upto or not self.stream:
            self._gap_since = None
            return
        self._gap_since = self._gap_since or time.monotonic()
        if time.monotonic() - self._gap_since > self.gap_wait_s:
            cmd = Command(cmd="resend", stream=self.stream, first=upto + 1, last=highest)
            self.client.publish(topics.cmd(self.agent), messages.encode(cmd), qos=1)
            self._gap_since = None

    @staticmethod
    def wait_for(condition: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.05)
