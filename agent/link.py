"""The MQTT link: publishes the outbox through a bounded window, follows billing's acks.

    link = Link(config, machines=("printer-1",), version="0.1.0")
    link.start()                 # returns at once; connects (and reconnects) in the background
    link.wake()                  # new rows in the outbox: publish them
    link.request_auth(request)   # AuthResponse, or None when billing does not answer in time

Rows leave the outbox only when billing's retained ``ack`` covers them, never on PUBACK. A
publisher thread owns its own outbox connection; paho's callbacks only note what happened and
wake it, and never raise into paho's thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.config import AgentConfig
from agent.failpoints import failpoint
from agent.outbox import Outbox
from broker import messages, topics
from broker.connection import new_client
from broker.errors import BadMessage
from broker.messages import (
    Ack,
    AgentStatus,
    Allowlist,
    AuthRequest,
    AuthResponse,
    Command,
    ServiceOrder,
)

log = logging.getLogger(__name__)

AUTH_EXPIRY_S = 5


class Link:
    """The agent's one broker connection, with a publisher thread draining the outbox."""

    def __init__(self, config: AgentConfig, *, machines: Iterable[str], version: str) -> None:
        self.config = config
        self.agent = config.agent_id
        self._machines = tuple(machines)
        self._version = version
        self._cond = threading.Condition()
        self._stopping = False
        self._connected = False
        self._acked = 0  # highest seq billing committed (from the retained ack)
        self._deleted = 0
        self._ack_progress_at = time.monotonic()
        self._next = 1  # next seq to publish
        self._inflight: set[int] = set()
        self._early: set[int] = set()  # PUBACKs that came back before publish() returned the mid
        self._resend_from: int | None = None
        self._bdseq = 0
        self._allowlist: Allowlist | None = None
        self._allowlist_raw: bytes | None = None
        self._waiting: dict[bytes, list[Any]] = {}  # correlation -> [threading.Event, response]
        self._by_session: dict[str, bytes] = {}  # session id -> correlation, for bridged replies
        self.stats = {"published": 0, "acked": 0}
        store = Outbox(config.outbox_path)
        self.stream = store.stream
        self._deleted = self._acked = store.last_seq() - store.count()
        self._next = self._acked + 1
        raw = store.get("allowlist")
        self._allowlist = _decode_allowlist(raw.encode()) if raw else None
        # the last service order of each machine: an agent booting without a network still obeys it
        self._orders: dict[str, ServiceOrder] = {}
        for machine in self._machines:
            saved = store.get(f"service:{machine}")
            if saved:
                self._orders[machine] = messages.decode(ServiceOrder, saved)
        self._orders_raw: dict[str, bytes] = {}
        store.close()
        self._client = self._make_client()
        self._publisher = threading.Thread(target=self._publish_loop, name="outbox-publisher", daemon=True)

    # -- life cycle ---------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = new_client(self.config.mqtt, f"fabmeter-{self.agent}")
        client.reconnect_delay_set(1, 30)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        cfg = self.config.mqtt
        self._client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive)
        self._client.loop_start()
        self._publisher.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``online: false`` (a clean goodbye), then disconnect and stop the threads."""
        if self._connected:
            status = AgentStatus(online=False, bdseq=self._bdseq, version=self._version, machines=self._machines)
            info = self._client.publish(topics.agent_status(self.agent), messages.encode(status), qos=1, retain=True)
            _wait_published(info, timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._publisher.join(timeout)
        self._client.disconnect()
        self._client.loop_stop()

    def alive(self) -> bool:
        """Both the MQTT network thread and the publisher thread are running (for the watchdog)."""
        thread = getattr(self._client, "_thread", None)
        return bool(thread and thread.is_alive() and self._publisher.is_alive())

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def allowlist(self) -> Allowlist | None:
        return self._allowlist

    def service_order(self, machine: str) -> ServiceOrder | None:
        """The machine's last order from billing (out of service or not), if one ever came."""
        return self._orders.get(machine)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- paho callbacks (paho's thread: note, wake, never raise) --------------------------------

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        try:
            store = Outbox(self.config.outbox_path)
            self._bdseq = store.next_bdseq()
            store.close()
            will = AgentStatus(online=False, bdseq=self._bdseq, version=self._version, machines=self._machines)
            client.will_set(topics.agent_status(self.agent), messages.encode(will), qos=1, retain=True)
        except Exception:
            log.exception("cannot prepare the MQTT connection (bdseq, Last Will)")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            if reason.is_failure:
                log.warning("broker refused the connection: %s", reason)
                return
            log.info("connected to the broker at %s:%s", self.config.mqtt.host, self.config.mqtt.port)
            for kind in ("ack", "auth_resp", "allowlist", "cmd"):
                client.subscribe(topics.build(kind, self.agent), qos=1)
            for machine in self._machines:
                client.subscribe(topics.machine_service(machine), qos=1)
            status = AgentStatus(online=True, bdseq=self._bdseq, version=self._version, machines=self._machines)
            client.publish(topics.agent_status(self.agent), messages.encode(status), qos=1, retain=True)
            with self._cond:
                self._connected = True
                self._inflight.clear()
                self._early.clear()
                self._next = self._acked + 1  # anything not acked may have died with the broker
                self._ack_progress_at = time.monotonic()
                self._cond.notify_all()
        except Exception:
            log.exception("error while handling the broker's CONNACK")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        with self._cond:
            self._connected = False
            self._inflight.clear()
            self._cond.notify_all()
        log.warning("disconnected from the broker (%s); events wait in the outbox", reason)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        failpoint("link.after_puback")
        with self._cond:
            if mid in self._inflight:
                self._inflight.discard(mid)
            else:
                self._early.add(mid)
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            kind = topics.parse(msg.topic).kind
            handler = {"ack": self._got_ack, "cmd": self._got_cmd, "allowlist": self._got_allowlist,
                       "auth_resp": self._got_auth, "service": self._got_service}.get(kind)  # fmt: skip
            if handler:
                handler(msg)
        except BadMessage as err:
            log.warning("ignored a bad message on %s: %s", msg.topic, err)
        except Exception:
            log.exception("error while handling a message on %s", msg.topic)

    def _got_ack(self, msg: mqtt.MQTTMessage) -> None:
        ack = messages.decode(Ack, msg.payload)
        if ack.stream != self.stream:
            log.debug("ack for another stream %s ignored", ack.stream)
            return
        with self._cond:
            if ack.upto > self._acked:
                self._acked = ack.upto
                self._ack_progress_at = time.monotonic()
                self._cond.notify_all()

    def _got_cmd(self, msg: mqtt.MQTTMessage) -> None:
        cmd = messages.decode(Command, msg.payload)
        if cmd.stream != self.stream:
            return
        log.info("billing asks for events %s..%s again", cmd.first, cmd.last)
        with self._cond:
            self._resend_from = min(cmd.first, self._resend_from or cmd.first)
            self._cond.notify_all()

    def _got_allowlist(self, msg: mqtt.MQTTMessage) -> None:
        allowlist = _decode_allowlist(bytes(msg.payload))
        with self._cond:
            self._allowlist, self._allowlist_raw = allowlist, bytes(msg.payload)
            self._cond.notify_all()

    def _got_service(self, msg: mqtt.MQTTMessage) -> None:
        order = messages.decode(ServiceOrder, msg.payload)
        if order.machine != topics.parse(msg.topic).id or order.machine not in self._machines:
            log.warning("a service order for %s on %s ignored", order.machine, msg.topic)
            return
        if order != self._orders.get(order.machine):
            log.info("%s is %s", order.machine, f"out of service: {order.reason}" if order.out_of_service
                     else "in service")  # fmt: skip
        with self._cond:
            self._orders[order.machine] = order
            self._orders_raw[order.machine] = bytes(msg.payload)
            self._cond.notify_all()

    def _got_auth(self, msg: mqtt.MQTTMessage) -> None:
        response = messages.decode(AuthResponse, msg.payload)
        correlation = getattr(msg.properties, "CorrelationData", None)
        # an MQTT 3.1.1 bridge (the van) drops CorrelationData: the session id still matches
        key = bytes(correlation) if correlation else self._by_session.get(response.session, b"")
        waiter = self._waiting.get(key)
        if waiter is None:
            log.info("an auth response came too late or for someone else; ignored")
            return
        waiter[1] = response
        waiter[0].set()

    # -- the publisher thread -----------------------------------------------------------------

    def _publish_loop(self) -> None:
        store = Outbox(self.config.outbox_path)
        try:
            while not self._stopping:
                self._publish_step(store)
        except Exception:
            log.exception("the outbox publisher stopped")
        finally:
            store.close()

    def _publish_step(self, store: Outbox) -> None:
        with self._cond:
            acked, resend, allowlist = self._acked, self._resend_from, self._allowlist_raw
            self._resend_from, self._allowlist_raw = None, None
            orders, self._orders_raw = self._orders_raw, {}
            if resend is not None:
                self._next = min(self._next, resend)
        if acked > self._deleted:
            gone = store.acknowledge(acked)
            self._deleted = acked
            self.stats["acked"] += gone
        if allowlist is not None:
            store.put("allowlist", allowlist.decode())
        for machine, raw in orders.items():
            store.put(f"service:{machine}", raw.decode())
        sent = self._fill_window(store)
        self._resend_if_stalled(store)
        if not sent:
            with self._cond:
                self._cond.wait(0.5)

    def _fill_window(self, store: Outbox) -> int:
        with self._cond:
            room = self.config.window - len(self._inflight)
            if not self._connected or room <= 0:
                return 0
            after = self._next - 1
        rows = store.pending(after, room)
        for seq, payload in rows:
            info = self._client.publish(topics.agent_events(self.agent), payload, qos=1)
            failpoint("link.after_publish")
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return 0  # disconnected meanwhile; on_connect starts again from the ack
            with self._cond:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                else:
                    self._inflight.add(info.mid)
                if self._next <= self._acked + 1:
                    # nothing was waiting for an ack: the stall timer starts with this event
                    self._ack_progress_at = time.monotonic()
                self._next = seq + 1
            self.stats["published"] += 1
        return len(rows)

    def _resend_if_stalled(self, store: Outbox) -> None:
        """Nothing acked for a while although events wait: the tail may have died with the broker."""
        with self._cond:
            stalled = time.monotonic() - self._ack_progress_at > self.config.resend_after_s
            if not (stalled and self._connected and self._next > self._acked + 1):
                return
            if store.count() == 0:
                return
            log.info("no ack since %.0f s: publishing events from %s again", self.config.resend_after_s, self._acked + 1)
            self._next = self._acked + 1
            self._ack_progress_at = time.monotonic()

    # -- other publications -------------------------------------------------------------------

    def publish_state(self, machine: str, payload: bytes) -> None:
        """Retained live state; dropped while offline (the next change or refresh sends it)."""
        if self._connected:
            self._client.publish(topics.machine_state(machine), payload, qos=1, retain=True)

    def request_auth(self, request: AuthRequest, timeout: float) -> AuthResponse | None:
        """Ask billing about a credential; None when it does not answer within ``timeout``."""
        if not self._connected:
            return None
        correlation = os.urandom(16)
        waiter: list[Any] = [threading.Event(), None]
        self._waiting[correlation] = waiter
        self._by_session[request.session] = correlation
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = topics.auth_resp(self.agent)
        props.CorrelationData = correlation
        props.MessageExpiryInterval = AUTH_EXPIRY_S
        try:
            self._client.publish(topics.auth_req(self.agent), messages.encode(request), qos=1, properties=props)
            waiter[0].wait(timeout)
        finally:
            self._waiting.pop(correlation, None)
            self._by_session.pop(request.session, None)
        response: AuthResponse | None = waiter[1]
        return response


def _decode_allowlist(payload: bytes) -> Allowlist:
    return messages.decode(Allowlist, payload)


def _wait_published(info: mqtt.MQTTMessageInfo, timeout: float) -> None:
    try:
        info.wait_for_publish(timeout)
    except (ValueError, RuntimeError) as err:
        log.info("goodbye status not sent: %s", err)
