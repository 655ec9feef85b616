"""The agent's main loop: poll machines, handle credentials, write events, feed the watchdog.

    agent = Agent(config)          # edges (drivers, pin factory, link) can be passed in
    agent.run()                    # until SIGTERM; returns the exit status

This is the one place that catches a driver's error: the machine is marked offline and the
loop goes on. Durations come from the monotonic clock; wall time is marked synced or not.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent import __version__
from agent.auth import Credential, holder, offline_spending_cents, offline_verdict
from agent.config import AgentConfig, ReaderConfig
from agent.errors import AgentError
from agent.interlock import Feedback, Interlock
from agent.link import Link
from agent.machines import Driver, build
from agent.outbox import Outbox
from agent.readers import KeyboardWedge, MatrixKeypad, Rdm6300Reader, SocketReader
from agent.sessions import (
    Pending,
    Rules,
    Track,
    advance,
    badge,
    claim,
    end_session,
    open_session,
    shutdown,
)
from agent.snapshot import MachineSnapshot, Now
from broker import messages
from broker.messages import AuthRequest, MachineState, OfflineAuth, Refusal
from broker.services import stop_on_signals
from broker.systemd import notify

log = logging.getLogger(__name__)


def run(config: AgentConfig) -> int:
    agent = Agent(config)
    stop_on_signals(agent.stopping)
    return agent.run()


class Agent:
    """Everything one Pi does, wired from its configuration."""

    def __init__(
        self, config: AgentConfig, *, drivers: dict[str, Driver] | None = None, pin_factory: Any = None,
        start_readers: bool = True,
    ) -> None:  # fmt: skip
        self.config = config
        self.boot = f"{_kernel_boot_id()}.{uuid.uuid4().hex[:8]}"
        self.outbox = Outbox(config.outbox_path)
        self.link = Link(config, machines=[m.id for m in config.machines], version=__version__)
        self.drivers = drivers if drivers is not None else {
            m.id: build(m, pin_factory=pin_factory, memory=self.outbox) for m in config.machines
        }
        self.interlocks = {
            m.id: Interlock(m.interlock_pin, pin_factory=pin_factory) for m in config.machines if m.interlock_pin
        }
        self.feedback = Feedback(config.led_pin, config.buzzer_pin, pin_factory=pin_factory)
        self.credentials: queue.Queue[Credential] = queue.Queue()
        self.readers = [_reader(r, self.credentials.put, pin_factory) for r in config.readers] if start_readers else []
        saved = self.outbox.tracks()
        self.tracks = {m.id: saved.get(m.id) or Track(m.id, m.kind) for m in config.machines}
        self._saved = dict(self.tracks)
        self._states: dict[str, tuple[bytes, float]] = {}
        # visit -> machine -> seconds used offline; kept in the outbox so a restart cannot reset the cap
        self._offline_s: dict[str, dict[str, float]] = json.loads(self.outbox.get("offline_spent") or "{}")
        self._holder_key = self._load_holder_key()
        self._refusals: dict[str, Refusal] = {}  # machine -> the last refusal there, shown in its state
        self.stopping = threading.Event()

    def _load_holder_key(self) -> bytes:
        key = self.outbox.get("holder_key")
        if key is None:
            key = os.urandom(32).hex()
            self.outbox.put("holder_key", key)
        return bytes.fromhex(key)

    # -- life cycle -------------------------------------------------------------------------

    def run(self) -> int:
        log.info("agent %s starting with machines %s", self.config.agent_id, ", ".join(self.tracks))
        self.link.start()
        for reader in self.readers:
            reader.start()
        notify("READY=1")
        while not self.stopping.is_set():
            started = time.monotonic()
            self.tick()
            if self.link.alive():
                notify("WATCHDOG=1")  # only while this loop and the MQTT threads all run
            self.stopping.wait(max(self.config.poll_s - (time.monotonic() - started), 0.05))
        self._shutdown()
        return 0

    def stop(self) -> None:
        self.stopping.set()

    def _shutdown(self) -> None:
        notify("STOPPING=1")
        now = self.now()
        for track in list(self.tracks.values()):
            self._commit(*shutdown(track, now))
        self._drive_interlocks()
        for reader in self.readers:
            reader.stop()
        deadline = time.monotonic() + 3  # give the last events a moment to reach billing
        while self.outbox.count() and self.link.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        self.link.stop()
        log.info("agent stopped; %s events wait in the outbox", self.outbox.count())
        self.close()

    def close(self) -> None:
        """Let go of the hardware (pins, ports, HTTP sessions) and the outbox."""
        devices: list[Any] = [*self.drivers.values(), *self.interlocks.values(), self.feedback]
        for device in devices:
            device.close()
        self.outbox.close()

    # -- one turn of the loop -------------------------------------------------------------------

    def tick(self) -> None:
        for machine in self.tracks:
            self._poll(machine)
        while True:
            try:
                self._credential(self.credentials.get_nowait())
            except queue.Empty:
                break
        self._drive_interlocks()

    def _poll(self, machine: str) -> None:
        snap = self._snapshot(machine)
        now = self.now()
        track, events = advance(self.tracks[machine], snap, now, self._rules(machine))
        self._commit(track, events)
        if self.out_of_service(machine) and track.session and not _running(track):
            self._commit(*end_session(track, now, "out_of_service"))  # the order applies at this idle
        self._publish_state(snap)

    def out_of_service(self, machine: str) -> bool:
        order = self.link.service_order(machine)
        return bool(order and order.out_of_service)

    def _snapshot(self, machine: str) -> MachineSnapshot:
        try:
            return self.drivers[machine].poll()
        except AgentError as err:
            if self._states.get(machine, (b"", 0.0))[0].find(b'"offline"') < 0:
                log.warning("machine %s is unreachable: %s", machine, err)
            return MachineSnapshot(machine, "offline", detail=str(err)[:500])

    def _rules(self, machine: str) -> Rules:
        cfg = self.config.machine(machine)
        timeout = cfg.idle_timeout_s or self.config.idle_timeout_s
        return Rules(checkpoint_s=self.config.checkpoint_s, idle_timeout_s=timeout, material=cfg.material,
                     filament_wait_s=self.config.filament_wait_s)  # fmt: skip

    def _commit(self, track: Track, events: list[Pending]) -> None:
        """Events and the machine's track go to the outbox in one transaction, then to the link."""
        before = self.tracks[track.machine].session
        if before and before.auth == "offline" and before.visit and (track.session is None or track.session.id != before.id):
            used = self._offline_s.setdefault(before.visit, {})
            used[track.machine] = used.get(track.machine, 0.0) + before.session_ns / 1e9
            self.outbox.put("offline_spent", json.dumps(self._offline_s))
        self.tracks[track.machine] = track
        changed = _persistent(track) != _persistent(self._saved[track.machine])
        if events or changed:
            self.outbox.record(events, [track])
            self._saved[track.machine] = track
        if events:
            for event in events:
                log.info("%s: %s (session %s)", event.machine, event.type, event.session)
            self.link.wake()

    def _publish_state(self, snap: MachineSnapshot) -> None:
        track = self.tracks[snap.machine]
        session = track.session
        job = snap.job if snap.job and (snap.running or snap.job.outcome) else None
        state = MachineState(
            machine=snap.machine, state=snap.state, wall_ns=time.time_ns(),
            job=job.name if job else None, progress=job.progress if job else None,
            elapsed_s=job.elapsed_s if job else None, remaining_s=job.remaining_s if job else None,
            temperatures=snap.temperatures, session=session.id if session else None,
            user=session.display_name if session else None, detail=snap.detail,
            refusal=self._refusals.get(snap.machine),
        )  # fmt: skip
        body = messages.encode(replace(state, wall_ns=0))
        last, sent_at = self._states.get(snap.machine, (b"", 0.0))
        if body != last or time.monotonic() - sent_at >= self.config.state_every_s:
            self.link.publish_state(snap.machine, messages.encode(state))
            self._states[snap.machine] = (body, time.monotonic())

    def _drive_interlocks(self) -> None:
        for machine, relay in self.interlocks.items():
            track = self.tracks[machine]
            claimed = track.session is not None and track.session.auth != "none"
            if track.job is not None or claimed and track.busy:  # never cut a running job, even out of service
                relay.energize()
            elif claimed and not self.out_of_service(machine):
                relay.energize()
            else:
                relay.release()

    # -- people at the machines -----------------------------------------------------------------

    def _credential(self, cred: Credential) -> None:
        if cred.machine not in self.tracks:
            log.warning("a credential for unknown machine %s ignored", cred.machine)
            return
        track, now = self.tracks[cred.machine], self.now()
        who = holder(cred, self._holder_key)
        if track.session and track.session.holder == who:
            self._commit(*badge(track, who, now))
            self.feedback.accepted()
            return
        if track.session and track.session.auth == "none" and track.job:
            self._claim(track, cred, who)
            return
        if track.session and track.session.auth != "none" or track.job:
            log.info("%s is in use: a %s presented there was refused", cred.machine, cred.kind)
            self._refuse(cred.machine, "in_use", "machine occupée")
            return
        order = self.link.service_order(cred.machine)
        if order and order.out_of_service:  # decided here: billing says the same, and may be away
            self._refuse(cred.machine, "out_of_service", f"hors service : {order.reason}")
            return
        self._authorize(track, cred, who)

    def _refuse(self, machine: str, code: str | None, message: str) -> None:
        """Signal a refusal at the machine and keep it in the machine's live state."""
        self.feedback.refused(code)
        self._refusals[machine] = Refusal(message=message[:200], at=int(time.time()), code=code)

    def _accepted(self, machine: str) -> None:
        self.feedback.accepted()
        self._refusals.pop(machine, None)

    def _claim(self, track: Track, cred: Credential, who: str) -> None:
        """A badge or PIN at a machine running a job nobody claimed (a print started without badging):
        billing is asked about that very session, and its yes gives the session to the visit."""
        assert track.session is not None
        request = AuthRequest(kind=cred.kind, credential=cred.secret, machine=cred.machine, session=track.session.id)
        answer = self.link.request_auth(request, self.config.auth_timeout_s)
        if answer is None or not answer.allow:
            # offline, billing cannot record the claim: staff attach the job at the desk instead
            reason = answer.reason if answer else "no answer from billing (a running job is claimed online only)"
            log.info("a %s claiming the job on %s was refused: %s", cred.kind, cred.machine, reason)
            self._refuse(cred.machine, answer.code if answer else None, reason)
            return
        track = self.tracks[cred.machine]
        if track.session is None or track.session.id != request.session:
            self._refuse(cred.machine, None, "the job ended while billing answered")  # nothing left to claim
            return
        self._commit(*claim(track, self.now(), auth="online", visit=answer.visit, holder=who,
                            display_name=answer.display_name))  # fmt: skip
        log.info("%s: the running job was claimed (session %s)", cred.machine, request.session)
        self._accepted(cred.machine)

    def _authorize(self, track: Track, cred: Credential, who: str) -> None:
        session_id = str(uuid.uuid4())
        request = AuthRequest(kind=cred.kind, credential=cred.secret, machine=cred.machine, session=session_id)
        answer = self.link.request_auth(request, self.config.auth_timeout_s)
        now = self.now()
        if answer is not None:
            if self._offline_s:  # billing is back: it knows what was spent
                self._offline_s.clear()
                self.outbox.put("offline_spent", "{}")
            if not answer.allow:
                log.info("billing refused a %s at %s: %s", cred.kind, cred.machine, answer.reason)
                self._refuse(cred.machine, answer.code, answer.reason)
                return
            track = self._end_unclaimed(track, now)
            self._commit(*open_session(track, now, session_id=session_id, auth="online", visit=answer.visit,
                                       holder=who, display_name=answer.display_name))  # fmt: skip
            self._accepted(cred.machine)
            return
        self._authorize_offline(track, cred, who, session_id, now)

    def _authorize_offline(self, track: Track, cred: Credential, who: str, session_id: str, now: Now) -> None:
        allowlist = self.link.allowlist
        spent = 0
        verdict = offline_verdict(allowlist, cred, now_s=time.time(), synced=now.wall_synced, spent_cents=0)
        if verdict.entry and allowlist:
            spent = offline_spending_cents(allowlist, self._offline_spent(verdict.entry.visit))
            verdict = offline_verdict(allowlist, cred, now_s=time.time(), synced=now.wall_synced, spent_cents=spent,
                                      digest=verdict.digest)  # fmt: skip
        visit = verdict.entry.visit if verdict.entry else None
        record = OfflineAuth(kind=cred.kind, credential=verdict.digest, accepted=verdict.accepted,
                             reason=verdict.reason, visit=visit)  # fmt: skip
        events = [Pending(track.machine, "offline_auth", session_id, record, now)]
        log.info("no answer from billing: %s at %s %s offline (%s)", cred.kind, cred.machine,
                 "accepted" if verdict.accepted else "refused", verdict.reason)  # fmt: skip
        if verdict.accepted and verdict.entry:
            self._commit(track, events)
            track, events = self._end_unclaimed(self.tracks[track.machine], now), []
            track, more = open_session(track, now, session_id=session_id, auth="offline", visit=visit,
                                       credential=verdict.digest, holder=who,
                                       display_name=f"#{verdict.entry.visit}")  # fmt: skip
            events += more
            self._offline_s.setdefault(verdict.entry.visit, {})
        self._commit(track, events)
        if verdict.accepted:
            self._accepted(cred.machine)
        else:
            self._refuse(cred.machine, verdict.code, verdict.reason)

    def _end_unclaimed(self, track: Track, now: Now) -> Track:
        """Someone badges in at a machine that was running unclaimed: that session ends here."""
        if track.session is None:
            return track
        self._commit(*end_session(track, now, "badge_out"))
        return self.tracks[track.machine]

    def _offline_spent(self, visit: str) -> dict[str, float]:
        """Seconds used offline by ``visit``: its open sessions now, plus those ended before."""
        spent = dict(self._offline_s.get(visit, {}))
        for machine, track in self.tracks.items():
            if track.session and track.session.auth == "offline" and track.session.visit == visit:
                spent[machine] = spent.get(machine, 0.0) + track.session.session_ns / 1e9
        return spent

    # -- clocks -------------------------------------------------------------------------------

    def now(self) -> Now:
        return Now(time.monotonic_ns(), time.time_ns(), wall_clock_synced(), self.boot)


def _running(track: Track) -> bool:
    """A job runs, or a relay machine draws current: nothing may cut it."""
    return track.job is not None or track.busy


def _persistent(track: Track) -> tuple[Any, ...]:
    """What must survive a restart between events: the session, the job, the last finished job, the
    filament still owed."""
    s = track.session
    job = track.job.key if track.job else None
    return (s.id if s else None, s.holder if s else None, job, track.last_ended_key, track.owed)


def _reader(config: ReaderConfig, sink: Any, pin_factory: Any) -> Any:
    if config.kind == "rdm6300":
        return Rdm6300Reader(config.port or "", machine=config.machine, sink=sink)
    if config.kind == "keyboard":
        return KeyboardWedge(config.device or "", machine=config.machine, sink=sink)
    if config.kind == "socket":
        return SocketReader(config.socket or "", machine=config.machine, sink=sink)
    return MatrixKeypad(config.row_pins, config.col_pins, machine=config.machine, sink=sink, pin_factory=pin_factory)


def _kernel_boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown-boot"


class _Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_int), ("_rest", ctypes.c_byte * 256)]


_LIBC: list[Any] = []


def wall_clock_synced() -> bool:
    """Whether the kernel says NTP synchronised the clock (adjtimex state is not TIME_ERROR)."""
    try:
        if not _LIBC:
            _LIBC.append(ctypes.CDLL(None, use_errno=True))
        state = _LIBC[0].adjtimex(ctypes.byref(_Timex()))
    except (OSError, AttributeError):
        return False
    return bool(0 <= state < 5)  # TIME_ERROR (5): clock not synchronised
