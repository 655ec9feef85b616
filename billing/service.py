"""The billing service: ingest, authorization, allow-lists and live state, wired together.

    service = BillingService(ServerConfig.from_file(path))
    service.start()          # two MQTT connections, three worker threads
    ...
    service.stop()

Threads: paho's network threads only enqueue. The ingest thread commits batches of events,
publishes the retained acks, then PUBACKs (so an event is acknowledged to the broker only
once it is in the ledger) and asks for resends. The control thread answers auth requests,
applies status and machine state to Redis, notices allow-lists that changed and writes
the live "cost so far"; the allow-list thread digests those lists (one Argon2id hash per entry)
and publishes them. Each catches, logs and goes on: a bad message or a lost Redis never
stops billing. Whatever a message raises while it is handled is recorded among rejected
messages (and, for events, acked); a loop that dies anyway is restarted and counted. The main
thread (``run``) writes a health report to Redis and feeds systemd's watchdog only while both
threads make progress whenever messages wait (``billing.health``).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import paho.mqtt.client as mqtt
import redis
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from billing.allowlists import AllowlistTracker, Plan, build, plans
from billing.auth import decide
from billing.bus import Bus
from billing.charges import Running, cost_so_far, price_ended
from billing.config import ServerConfig
from billing.database import make_engine
from billing.downtime import order
from billing.errors import NotYours
from billing.grants import claim_running, grant_online, visit_number
from billing.health import Parts
from billing.ingest import BatchResult, Inbox, Received
from billing.live import LiveState
from billing.lockouts import slowed_terminals
from billing.models import Machine, UsageSession, rejected, utcnow
from billing.money import to_cents
from billing.upkeep import counters, due
from broker import topics
from broker.errors import BadMessage
from broker.messages import (
    MAX_PAYLOAD_BYTES,
    AgentStatus,
    Allowlist,
    AuthRequest,
    AuthResponse,
    MachineState,
    ServiceOrder,
    decode,
    encode,
)
from broker.systemd import notify

log = logging.getLogger(__name__)
RETRY_S = 1.0
HEARTBEAT_S = 5.0
UPKEEP_EVERY_S = 30.0  # counters are sums over a machine's sessions: not on every tick


def within_size_limit(allowlist: Allowlist) -> Allowlist:
    """The list, without its oldest entries if it would pass the broker's size limit (which would
    drop it and disconnect billing): the newest visits are the ones at the machines now."""
    entries = allowlist.entries
    while entries and len(encode(replace(allowlist, entries=entries))) > MAX_PAYLOAD_BYTES:
        entries = entries[max(1, len(entries) // 50) :]
    if len(entries) < len(allowlist.entries):
        log.error("allow-list cut to its %s newest entries of %s to fit %s bytes",
                  len(entries), len(allowlist.entries), MAX_PAYLOAD_BYTES)  # fmt: skip
    return replace(allowlist, entries=entries)


class BillingService:
    """Owns the engine, the two bus connections, Redis and the worker threads."""

    def __init__(self, config: ServerConfig, *, redis_client: redis.Redis | None = None) -> None:
        self.config = config
        self.engine = make_engine(config.database_url)
        self.factory: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        self.inbox = Inbox(self.factory, gap_wait_s=config.billing.gap_wait_s)
        client = redis_client or redis.Redis.from_url(config.redis_url, decode_responses=True)
        self.live = LiveState(client)
        mqtt_config = config.mqtt
        self.events = Bus(mqtt_config, mqtt_config.client_id, persistent=True, manual_ack=True)
        self.control = Bus(mqtt_config, mqtt_config.client_id + "-control", persistent=False)
        self._event_queue: queue.Queue[Received] = queue.Queue()
        self._control_queue: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._costs: set[str] = set()
        self._costs_lock = threading.Lock()
        self._running: dict[str, Running] = {}  # session → what its machine's last state said
        self._agents: dict[str, str] = {}  # machine → agent, from statuses
        self._statuses: dict[str, AgentStatus] = {}  # agent → last status applied (Redis may forget it)
        self._allowlists = AllowlistTracker()
        self._allowlist_queue: queue.Queue[dict[str, Plan]] = queue.Queue()
        self._pin_waits: dict[str, tuple[int, int]] | None = None  # machine → (until, failures) on the board
        self._orders: dict[str, ServiceOrder] = {}  # machine → service order last published (retained)
        self._upkeep: dict[str, list[str]] = {}  # machine → upkeep warnings last shown
        self._upkeep_at = 0.0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pending: list[Received] = []  # a batch that could not be committed yet
        self.parts = Parts(stall_s=config.billing.stall_s)
        self.parts.add("ingest", lambda: self._event_queue.qsize() + len(self._pending))
        self.parts.add("control", self._control_queue.qsize)
        self.committed = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._threads = [self._thread("ingest", self._ingest_loop), self._thread("control", self._control_loop),
                         self._thread("allowlists", self._allowlist_loop)]  # fmt: skip
        for thread in self._threads:
            thread.start()
        self.events.start(self._on_event, [(topics.pattern("events"), 1)])
        self.control.start(self._control_queue.put, [
            (topics.pattern("status"), 1), (topics.pattern("state"), 1), (topics.pattern("auth_req"), 1),
        ])  # fmt: skip

    def _thread(self, part: str, loop: Callable[[], None]) -> threading.Thread:
        return threading.Thread(target=self._supervise, args=(part, loop), name=f"billing-{part}", daemon=True)

    def _supervise(self, part: str, loop: Callable[[], None]) -> None:
        """Run ``loop`` until stopped; whatever it raises is logged and counted, and it runs again."""
        while not self._stop.is_set():
            try:
                loop()
            except Exception:
                self.parts.restarted(part)
                log.exception("billing %s stopped on an error (restart %s)", part, self.parts.restarts(part))
                self._stop.wait(RETRY_S)

    def run(self, stop: threading.Event) -> None:
        """The main thread: tell systemd it is ready, then report health every few seconds."""
        notify("READY=1")
        self.beat()
        while not stop.wait(HEARTBEAT_S):
            self.beat()
        notify("STOPPING=1")

    def beat(self) -> bool:
        """Publish the health report; feed systemd's watchdog only while every part moves."""
        report = self.parts.report(time.time())
        dead = [t.name for t in self._threads if not t.is_alive()]
        report["problems"] += [f"{name}: thread not running" for name in dead]
        try:
            self.live.health(json.dumps(report))
        except redis.RedisError as err:
            log.warning("cannot write the health report to Redis: %s", err)
        healthy = not report["problems"]
        if healthy:
            notify("WATCHDOG=1")
        else:
            log.error("unhealthy: %s", "; ".join(report["problems"]))
        return healthy

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.events.stop()
        self.control.stop()
        self.engine.dispose()

    def wait(self) -> None:
        self._stop.wait()

    # -- ingest ---------------------------------------------------------------------------

    def _on_event(self, message: mqtt.MQTTMessage) -> None:
        self._event_queue.put(Received(message.topic, bytes(message.payload), message.mid))

    def _take_batch(self) -> list[Received]:
        try:
            batch = [self._event_queue.get(timeout=self.config.billing.tick_s)]
        except queue.Empty:
            return []
        while len(batch) < self.config.billing.batch_max:
            try:
                batch.append(self._event_queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _ingest_loop(self) -> None:
        self._price_ended()
        self._republish_positions()
        while not self._stop.is_set():
            self._pending = self._pending or self._take_batch()
            if not self._pending or self._commit(self._pending):
                self._pending = []
                self.parts.moved("ingest")
            for agent, command in self.inbox.resends():
                log.info("asking %s to resend %s..%s of %s", agent, command.first, command.last, command.stream)
                self.events.publish(topics.cmd(agent), encode(command))

    def _price_ended(self) -> None:
        """Sessions left ended and unpriced (an earlier crash, an earlier version): priced now."""
        try:
            with self.factory.begin() as db:
                priced = price_ended(db)
        except SQLAlchemyError:
            log.exception("cannot price the ended sessions left over; they wait for the next start")
            return
        if priced:
            log.warning("priced %s ended sessions found unpriced at start", priced)

    def _republish_positions(self) -> None:
        try:
            for agent, ack in self.inbox.positions():
                self.events.publish(topics.agent_ack(agent), encode(ack), retain=True)
        except SQLAlchemyError:
            log.exception("cannot read stream positions; acks will follow new events")

    def _commit(self, batch: list[Received]) -> bool:
        try:
            result = self.inbox.commit(batch)
        except SQLAlchemyError:
            log.exception("cannot commit %s events; retrying in %s s", len(batch), RETRY_S)
            self._stop.wait(RETRY_S)
            return False
        self._after_commit(batch, result)
        return True

    def _after_commit(self, batch: list[Received], result: BatchResult) -> None:
        for agent, ack in result.acks:
            self.events.publish(topics.agent_ack(agent), encode(ack), retain=True)
        for message in batch:
            if message.mid:
                self.events.ack(message.mid)
        if result.rejected:
            log.warning("%s bad messages recorded among rejected messages", result.rejected)
        self.committed += len(batch)
        with self._costs_lock:
            self._costs |= result.sessions

    # -- control: auth, status, state, allow-lists, live cost -----------------------------

    def _control_loop(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            try:
                message = self._control_queue.get(timeout=self.config.billing.tick_s)
            except queue.Empty:
                message = None
            try:
                if message is not None:
                    self._handle_control(message)
                if time.monotonic() - last >= self.config.billing.tick_s:
                    last = time.monotonic()
                    self._housekeeping()
            except (SQLAlchemyError, redis.RedisError):
                log.exception("control work failed; going on")
            self.parts.moved("control")

    def _handle_control(self, message: mqtt.MQTTMessage) -> None:
        payload = bytes(message.payload)
        try:
            where = topics.parse(message.topic)
            if where.kind == "auth_req":
                request = decode(AuthRequest, payload)
                self._answer(where.id, request, message.properties)  # another agent's machine: refused
            elif where.kind == "status":
                status = decode(AgentStatus, payload)
                self._owned(where.id, status.machines)
                self._status(where.id, status)
            elif where.kind == "state" and payload:
                state = decode(MachineState, payload)
                if state.machine != where.id:
                    raise NotYours("the topic names machine %(topic)s, the payload %(payload)s", topic=where.id, payload=state.machine)
                self._state(state)
        except (BadMessage, NotYours) as err:
            self._reject(message.topic, payload, str(err))
        except Exception as err:  # one message must never stop the control thread
            log.exception("message on %s could not be handled", message.topic)
            self._reject(message.topic, payload, f"cannot be handled: {err.__class__.__name__}: {err}")

    def _reject(self, topic: str, payload: bytes, reason: str) -> None:
        log.warning("rejected message on %s: %s", topic, reason[:300])
        try:
            with self.factory.begin() as db:
                db.add(rejected(topic, payload, reason))
        except SQLAlchemyError:
            log.exception("cannot record the rejected message on %s", topic)

    def _owned(self, agent: str, machines: tuple[str, ...]) -> None:
        """Raise NotYours if the ledger gives one of the machines to another agent (a machine
        nobody has yet is registered to the agent whose events first name it)."""
        with self.factory() as db:
            rows = db.execute(select(Machine.id, Machine.agent).where(Machine.id.in_(machines)))
            owners = {machine: owner for machine, owner in rows}
        for machine in machines:
            owner = owners.get(machine)
            if owner not in (None, agent):
                raise NotYours("machine %(machine)s is not one of %(agent)s's machines", machine=machine, agent=agent)

    def _answer(self, agent: str, request: AuthRequest, properties: Any) -> None:
        with self.factory.begin() as db:
            response = decide(db, request, pepper=self.config.pepper, rules=self.config.billing, agent=agent)
            visit_id = visit_number(response.visit) if response.allow else None
            refusal = claim_running(db, agent, request, visit_id) if visit_id is not None else None
            if refusal is not None:
                response = AuthResponse(allow=False, reason=refusal, session=request.session)
            elif visit_id is not None:
                grant_online(db, agent, request, visit_id)  # what a session_started may claim
        reply = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        correlation = getattr(properties, "CorrelationData", None)
        if correlation is not None:
            reply.CorrelationData = correlation
        # the answer goes to the asking agent's own topic, never where the request points: billing
        # may write anywhere, so a ResponseTopic naming another agent's topic would speak for billing
        topic = topics.auth_resp(agent)
        named = getattr(properties, "ResponseTopic", None)
        if named not in (None, topic):
            log.warning("%s asked for an answer on %s; answering on %s", agent, named, topic)
        self.control.publish(topic, encode(response), properties=reply)
        log.info("%s %s at %s: %s", "allowed" if response.allow else "refused", request.kind,
                 request.machine, response.reason)  # fmt: skip

    def _status(self, agent: str, status: AgentStatus) -> None:
        for machine in status.machines:
            self._agents[machine] = agent
        if self.live.status(agent, status):
            self._statuses[agent] = status

    def _state(self, state: MachineState) -> None:
        self.live.state(state, self._agents.get(state.machine))
        if state.session:
            now = Running(state.elapsed_s or 0, state.state in ("busy", "printing"))
            with self._costs_lock:
                if self._running.get(state.session) != now:
                    self._running[state.session] = now
                    self._costs.add(state.session)  # the cost so far moves with the time and the work
        if state.session and (state.remaining_s is not None or state.progress is not None):
            self._running_job(state.machine, state.session, state.remaining_s, state.progress)

    def _running_job(self, machine: str, session_id: str, remaining_s: int | None, progress: float | None) -> None:
        """Keep "ends at 03:40" and the progress of a running print (written when they move)."""
        with self.factory.begin() as db:
            session = db.get(UsageSession, session_id)
            if session is None or session.state != "open" or session.machine_id != machine:
                return  # not this machine's session: a state cannot reach another machine's
            if remaining_s is not None:
                ends = utcnow() + timedelta(seconds=remaining_s)
                old = session.expected_end_at
                if old is None or abs((old - ends).total_seconds()) > 60:
                    session.expected_end_at = ends
            if progress is not None and session.job_state == "running":
                milli = int(Decimal(str(progress)) * 1000)
                if abs(milli - (session.job_progress_milli or 0)) >= 1000:  # every 1 %
                    session.job_progress_milli = milli
                    with self._costs_lock:
                        self._costs.add(session_id)

    def _housekeeping(self) -> None:
        for agent, status in list(self._statuses.items()):
            if not self.live.knows(agent):  # Redis restarted empty: agents only say it on reconnect
                self.live.status(agent, status)
        with self.factory() as db:
            wanted = plans(db, rules=self.config.billing)
        changed = self._allowlists.changed(wanted)
        if changed:
            self._allowlist_queue.put(changed)
        self._show_pin_waits()
        self._publish_service_orders()
        if time.monotonic() - self._upkeep_at >= UPKEEP_EVERY_S:
            self._upkeep_at = time.monotonic()
            self._show_upkeep()
        if self.config.billing.live_cost:
            self._live_costs()

    def _allowlist_loop(self) -> None:
        """Digest and publish the lists whose plan changed (a hash per entry: not on the control thread)."""
        while not self._stop.is_set():
            try:
                changed = self._allowlist_queue.get(timeout=self.config.billing.tick_s)
            except queue.Empty:
                continue
            while not self._allowlist_queue.empty():  # only the newest plan of each agent matters
                changed |= self._allowlist_queue.get_nowait()
            for agent, plan in changed.items():
                try:
                    with self.factory.begin() as db:
                        allowlist = build(db, agent, plan, pepper=self.config.pepper, rules=self.config.billing)
                        allowlist = within_size_limit(allowlist)
                except SQLAlchemyError:
                    log.exception("cannot build the allow-list of %s; trying again", agent)
                    self._allowlists.forget(agent)
                    continue
                self.control.publish(topics.allowlist(agent), encode(allowlist), retain=True)

    def _publish_service_orders(self) -> None:
        """Each machine's out-of-service order, retained for its agent, when staff changed it."""
        with self.factory() as db:
            wanted = {m.id: order(m) for m in db.scalars(select(Machine).where(Machine.active))}
        for machine, wanted_order in wanted.items():
            # the card is checked every tick (a restarted Redis forgets it), written only if it differs
            self.live.service(machine, wanted_order.reason if wanted_order.out_of_service else None,
                              wanted_order.since)  # fmt: skip
            if self._orders.get(machine) != wanted_order:
                self.control.publish(topics.machine_service(machine), encode(wanted_order), retain=True)
                self._orders[machine] = wanted_order

    def _show_upkeep(self) -> None:
        """Upkeep warnings on the board: machines past a threshold since their last service."""
        with self.factory() as db:
            machines = db.scalars(select(Machine).where(Machine.active)).all()
            warnings = {m.id: due(m, counters(db, m.id)) for m in machines}
        for machine, shown in warnings.items():
            if self._upkeep.get(machine) != shown:
                self.live.upkeep(machine, shown)
                self._upkeep[machine] = shown

    def _show_pin_waits(self) -> None:
        """Put on the board which PIN pads wait after wrong PINs; clear those that listen again."""
        with self.factory() as db:
            slowed = slowed_terminals(db, utcnow())
        waits = {m: (int(until.timestamp()), failures) for m, (until, failures) in slowed.items()}
        if self._pin_waits is None:  # just started: whatever the board still shows may be over
            self._pin_waits = {machine: (0, 0) for machine in self.live.pin_waiting()}
        for machine in self._pin_waits.keys() - waits.keys():
            self.live.pin_wait(machine, None)
        for machine, (until, failures) in waits.items():
            if self._pin_waits.get(machine) != (until, failures):
                self.live.pin_wait(machine, until, failures)
        self._pin_waits = waits

    def _live_costs(self) -> None:
        with self._costs_lock:
            sessions, self._costs = self._costs, set()
        if not sessions:
            return
        with self.factory() as db:
            for session_id in sessions:
                session = db.get(UsageSession, session_id)
                if session is None:
                    continue
                with self._costs_lock:
                    now = self._running.get(session_id) if session.state == "open" else self._running.pop(session_id, None)
                cost = cost_so_far(db, session, now) if session.state == "open" else None
                user = session.visit.label if session.visit is not None else None
                self.live.cost(session.machine_id, session.id, None if cost is None else to_cents(cost), user,
                               claimed=session.visit is not None)  # fmt: skip
