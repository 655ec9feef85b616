"""A whole fablab on loopback for fault scenarios: broker, Redis, billing and agents as real processes.

    site = Site(tmp_path).start()              # mosquitto (passwords + ACL), redis, ledger, billing
    site.start_agent("pi-printer")             # ``fabmeter agent`` behind a FaultProxy
    site.proxy("pi-printer").mode = "blackhole"
    site.kill_agent("pi-printer")              # SIGKILL: a real crash
    site.settle_and_check()                    # the invariants every scenario ends with

The printer is a ``SimulatedOctoPrint`` printing jobs of ``job_s`` seconds back to back, so the
truth of every printer session is known; the laser is a simulated GRBL on a pseudo-terminal with an
RDM6300 badge reader on another pseudo-terminal, so the test badges in and out and keeps the truth.
Billing and the agents run as ``python -m fabmeter …`` subprocesses, so a kill is a real kill.
"""

from __future__ import annotations

import getpass
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from agent.sim.grbl import SimulatedGrbl
from agent.sim.octoprint import SimulatedOctoPrint
from billing.charges import attach_session
from billing.database import make_engine, upgrade
from billing.models import ChargeLine, InboxEvent, RejectedMessage, StreamPosition, UsageSession
from billing.seed import seed
from billing.tariffs import set_tariff
from billing.visits import open_visit
from broker.registry import AgentEntry, Registry, write_broker_config
from broker.services import PrivateMosquitto, PrivateRedis, free_port
from dashboard.demo import BADGE, BadgeReader
from tests.proxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
PEPPER = "fault-suite-pepper"
UNIT_S = 5  # the time unit of the test tariffs: billed time must be within one of the truth
AGENTS = {"pi-printer": ("printer-1",), "pi-laser": ("laser-1",)}


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, site: Site | None = None) -> Any:
    """Poll ``predicate`` until it is truthy; fail with ``what`` and the processes' logs."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{site.logs() if site else ''}")
        time.sleep(0.1)


class Printer:
    """A simulated OctoPrint printing ``job_s``-second jobs separated by ``idle_s``, which can be told
    to finish: the running job completes, then the printer stays idle (its clock stops there)."""

    def __init__(self, job_s: float, idle_s: float) -> None:
        self.job_s, self.idle_s = job_s, idle_s
        self._cap: float | None = None
        self.sim = SimulatedOctoPrint(api_key="fault-key", job_s=job_s, idle_s=idle_s, cancel_every=0,
                                      clock=self._clock).start()  # fmt: skip

    def _clock(self) -> float:
        now = time.monotonic()
        return now if self._cap is None else min(now, self._cap)

    def finish(self) -> int:
        """Let the running job end, then stay idle; how many jobs will have been printed."""
        if self._cap is None:
            phase = self.sim.cycle.phase()
            now = time.monotonic()
            rest = (self.job_s - phase.elapsed_s) + self.idle_s / 2 if phase.printing else 0.0
            self._cap = now + rest
        return self.jobs_done()

    def jobs_done(self) -> int:
        """Jobs finished by the (possibly stopped) clock."""
        # job n ends n * (job_s + idle_s) after the simulator started (it starts idle)
        return int((self._clock() - self.sim.cycle._start) // (self.job_s + self.idle_s))

    def printing(self) -> bool:
        return self.sim.cycle.phase().printing

    def wait_printing(self, printing: bool, timeout: float = 30) -> None:
        wait_until(lambda: self.printing() == printing, timeout, f"the printer {'printing' if printing else 'idle'}")

    def stop(self) -> None:
        self.sim.stop()


@dataclass
class AgentProcess:
    id: str
    config: Path
    outbox: Path
    log: Path
    proxy: FaultProxy
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    starts: int = 0
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "fabmeter"])


class Site:
    """Everything of one fablab, each part startable, killable and checkable on its own."""

    def __init__(self, tmp: Path, *, job_s: float = 4.0, idle_s: float = 2.0, keepalive: int = 5,
                 window: int = 4, resend_after_s: float = 3.0, billing_extra: str = "") -> None:  # fmt: skip
        self.tmp = tmp
        self.job_s, self.idle_s = job_s, idle_s
        self.keepalive, self.window, self.resend_after_s = keepalive, window, resend_after_s
        self.billing_extra = billing_extra
        self.broker_dir = tmp / "broker"
        self.mosquitto: PrivateMosquitto | None = None
        self.redis = PrivateRedis(tmp / "redis")
        self.db_url = f"sqlite:///{tmp / 'ledger.db'}"
        self.engine: Engine | None = None
        self.billing: subprocess.Popen[bytes] | None = None
        self.billing_log = tmp / "billing.log"
        self.billing_starts = 0
        self.agents: dict[str, AgentProcess] = {}
        self.printer: Printer | None = None
        self.grbl: SimulatedGrbl | None = None
        self.badge: BadgeReader | None = None
        self.visit_id = 0
        self.pin = ""
        self.laser_truth: list[float] = []  # seconds of each laser session the test badged

    # -- services -------------------------------------------------------------------------

    def start(self, *, billing: bool = True) -> Site:
        port = free_port()
        registry = Registry(tuple(AgentEntry(a, m) for a, m in AGENTS.items()))
        write_broker_config(registry, self.broker_dir, listen=("127.0.0.1", port), run_as=getpass.getuser())
        self.mosquitto = PrivateMosquitto(self.broker_dir, port=port, conf=self.broker_dir / "mosquitto.conf")
        self.mosquitto.start()
        self.redis.start()
        self._ledger()
        self._write_server_toml()
        if billing:
            self.start_billing()
        return self

    def secret(self, user: str) -> str:
        return (self.broker_dir / "secrets" / f"{user}.password").read_text().strip()

    @property
    def broker_port(self) -> int:
        assert self.mosquitto is not None
        return self.mosquitto.port

    def _ledger(self) -> None:
        upgrade(self.db_url)
        self.engine = make_engine(self.db_url)
        with self.db() as db:
            seed(db)
            set_tariff(db, "printer-1", "walk-in", unit_price_cents=10, unit_s=UNIT_S, basis="job",
                       material_applies=True, actor="test")  # fmt: skip
            set_tariff(db, "laser-1", "walk-in", unit_price_cents=10, unit_s=UNIT_S, basis="session", actor="test")
            checked = open_visit(db, pepper=PEPPER, category="walk-in", actor="desk", badge_uid=BADGE)
            self.visit_id, self.pin = checked.visit.id, checked.pin or ""
            db.commit()

    def db(self) -> Session:
        assert self.engine is not None
        return sessionmaker(self.engine, expire_on_commit=False)()

    def _write_server_toml(self) -> None:
        (self.tmp / "pepper").write_text(PEPPER)
        (self.tmp / "server.toml").write_text(
            f'database_url = "{self.db_url}"\nredis_url = "{self.redis.url}"\npepper_file = "pepper"\n'
            f'[mqtt]\nport = {self.broker_port}\nusername = "billing"\n'
            f'password_file = "{self.broker_dir / "secrets" / "billing.password"}"\nkeepalive = 5\n'
            '[organisation]\nname = "Fablab"\naddress = "Ici"\nsiret = "1"\n'
            f"[billing]\ngap_wait_s = 0.5\ntick_s = 0.1\n{self.billing_extra}"
        )

    # -- billing --------------------------------------------------------------------------

    def start_billing(self) -> None:
        self.billing_starts += 1
        with open(self.billing_log, "ab") as log:
            log.write(f"\n===== billing start {self.billing_starts}\n".encode())
            self.billing = subprocess.Popen(
                [sys.executable, "-m", "fabmeter", "billing", "--no-upgrade", "--config", str(self.tmp / "server.toml")],
                cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until(lambda: b"connected to" in self.billing_log.read_bytes().rsplit(b"=====", 1)[-1], 20,
                   "billing to connect", self)  # fmt: skip

    def kill_billing(self, sig: int = signal.SIGKILL) -> None:
        if self.billing and self.billing.poll() is None:
            self.billing.send_signal(sig)
            self.billing.wait(15)
        self.billing = None

    # -- agents ---------------------------------------------------------------------------

    def add_agent(self, agent_id: str, *, password: str | None = None, env: dict[str, str] | None = None) -> AgentProcess:
        """Write the agent's configuration and its proxy (not started yet)."""
        proxy = FaultProxy(upstream_port=self.broker_port).start()
        folder = self.tmp / agent_id
        folder.mkdir()
        (folder / "password").write_text((password or self.secret(agent_id)) + "\n")
        body = (
            f'agent_id = "{agent_id}"\n[mqtt]\nport = {proxy.port}\nusername = "{agent_id}"\n'
            f'password_file = "password"\nkeepalive = {self.keepalive}\n'
            f'[outbox]\npath = "outbox.db"\nwindow = {self.window}\nresend_after_s = {self.resend_after_s}\n'
            "[agent]\npoll_s = 0.2\ncheckpoint_s = 30\nauth_timeout_s = 1.5\nstate_every_s = 1\n"
        )
        body += self._machines(agent_id, folder)
        (folder / "agent.toml").write_text(body)
        agent = AgentProcess(agent_id, folder / "agent.toml", folder / "outbox.db", folder / "agent.log", proxy,
                             env=env or {})  # fmt: skip
        self.agents[agent_id] = agent
        return agent

    def _machines(self, agent_id: str, folder: Path) -> str:
        if agent_id == "pi-printer":
            if self.printer is None:
                self.printer = Printer(self.job_s, self.idle_s)
            (folder / "octoprint.key").write_text("fault-key\n")
            return (f'[[machines]]\nid = "printer-1"\ndriver = "octoprint"\nurl = "{self.printer.sim.url}"\n'
                    'api_key_file = "octoprint.key"\ntimeout_s = 1\n')  # fmt: skip
        self.grbl = SimulatedGrbl(link=folder / "grbl", cut_s=1, idle_s=100_000).start()
        self.badge = BadgeReader(folder / "badge")
        return (f'[[machines]]\nid = "laser-1"\ndriver = "grbl"\nport = "{folder / "grbl"}"\n'
                f'idle_timeout_s = 600\n[[readers]]\nkind = "rdm6300"\nmachine = "laser-1"\nport = "{folder / "badge"}"\n')

    def start_agent(self, agent_id: str, *, wait_connected: bool = True) -> AgentProcess:
        agent = self.agents.get(agent_id) or self.add_agent(agent_id)
        agent.starts += 1
        with open(agent.log, "ab") as log:
            log.write(f"\n===== agent start {agent.starts}\n".encode())
            agent.proc = subprocess.Popen(
                [*agent.command, "agent", "--config", str(agent.config)],
                cwd=ROOT, env={**_env(), **agent.env}, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        if wait_connected:
            self.wait_agent_connected(agent_id)
        return agent

    def agent_log(self, agent_id: str, *, this_run: bool = True) -> str:
        text = self.agents[agent_id].log.read_text(errors="replace")
        return text.rsplit("=====", 1)[-1] if this_run else text

    def wait_agent_connected(self, agent_id: str, timeout: float = 20) -> None:
        wait_until(lambda: "connected to the broker" in self.agent_log(agent_id), timeout,
                   f"{agent_id} to connect", self)  # fmt: skip

    def kill_agent(self, agent_id: str, sig: int = signal.SIGKILL) -> None:
        agent = self.agents[agent_id]
        if agent.proc and agent.proc.poll() is None:
            agent.proc.send_signal(sig)
            agent.proc.wait(20)
        agent.proc = None

    def proxy(self, agent_id: str) -> FaultProxy:
        return self.agents[agent_id].proxy

    def outbox_count(self, agent_id: str) -> int:
        path = self.agents[agent_id].outbox
        if not path.exists():
            return 0
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # not created yet
        finally:
            db.close()

    # -- the laser: badge in and out, keeping the truth ------------------------------------

    def laser_session(self, seconds: float) -> None:
        """Badge in, use the laser for ``seconds``, badge out (blocking)."""
        assert self.badge is not None
        self.badge.present(BADGE)
        wait_until(lambda: self.open_sessions("laser-1") or self._agent_says("laser-1: session_started"),
                   10, "the laser session to start", self)  # fmt: skip
        started = time.monotonic()
        time.sleep(max(seconds, 2.2))  # the reader drops a card seen again within 2 s
        self.badge.present(BADGE)
        self.laser_truth.append(time.monotonic() - started)
        wait_until(lambda: self._agent_says("laser-1: session_ended", count=len(self.laser_truth)), 10,
                   "the laser session to end", self)  # fmt: skip

    def _agent_says(self, text: str, count: int = 1) -> bool:
        return self.agent_log("pi-laser", this_run=False).count(text) >= count

    # -- reading the ledger ---------------------------------------------------------------

    def sessions(self, machine: str | None = None) -> list[UsageSession]:
        with self.db() as db:
            query = select(UsageSession).order_by(UsageSession.started_at)
            if machine:
                query = query.where(UsageSession.machine_id == machine)
            return list(db.scalars(query))

    def open_sessions(self, machine: str | None = None) -> list[UsageSession]:
        return [s for s in self.sessions(machine) if s.state == "open"]

    def inbox_count(self) -> int:
        with self.db() as db:
            return int(db.scalar(select(func.count()).select_from(InboxEvent)) or 0)

    def rejected(self) -> list[RejectedMessage]:
        with self.db() as db:
            return list(db.scalars(select(RejectedMessage)))

    def logs(self) -> str:
        parts = [f"--- billing (last 3000 chars)\n{_tail(self.billing_log)}"]
        parts += [f"--- {a.id} (last 3000 chars)\n{_tail(a.log)}" for a in self.agents.values()]
        return "\n".join(parts)

    # -- the invariants every scenario ends with -----------------------------------------

    def settle(self, timeout: float = 60) -> int:
        """Stop the printer after its job, wait until every session ended and every outbox is empty."""
        jobs = self.printer.finish() if self.printer else 0
        if self.printer:
            self.printer.wait_printing(False, timeout)
            jobs = self.printer.jobs_done()

        def done() -> bool:
            ended = not self.open_sessions()
            printed = len(self.sessions("printer-1")) >= jobs
            empty = all(self.outbox_count(a) == 0 for a in self.agents)
            return ended and printed and empty

        wait_until(done, timeout, f"all sessions ended ({jobs} jobs) and outboxes empty", self)
        return jobs

    def check(self, *, jobs: int, min_jobs: int = 1, forged: frozenset[str] = frozenset()) -> None:
        """Each session charged exactly once, billed time within one unit of the truth, no seq gap.

        ``forged``: sessions a hostile client made up, left out (staff would not attach them)."""
        assert jobs >= min_jobs, f"only {jobs} jobs printed: the scenario did not run long enough"
        self._attach_unclaimed(forged)
        with self.db() as db:
            sessions = [s for s in db.scalars(select(UsageSession).order_by(UsageSession.started_at))
                        if s.id not in forged]  # fmt: skip
            printer = [s for s in sessions if s.machine_id == "printer-1"]
            assert len(printer) == jobs, f"{len(printer)} printer sessions for {jobs} jobs\n{self.logs()}"
            for session in sessions:
                self._charged_once(db, session)
            for session in printer:
                assert session.job_state == "completed", (session.id, session.job_state, session.end_reason)
                self._billed_near(db, session, self.job_s)
            laser = sorted((s for s in sessions if s.machine_id == "laser-1"), key=lambda s: s.session_s)
            assert len(laser) == len(self.laser_truth), (len(laser), self.laser_truth)
            for session, truth in zip(laser, sorted(self.laser_truth), strict=True):
                self._billed_near(db, session, truth)
            self._no_gaps(db)
        for agent in self.agents:
            assert self.outbox_count(agent) == 0, f"{agent}'s outbox is not empty"

    def _attach_unclaimed(self, forged: frozenset[str]) -> None:
        """Staff at the desk give the prints nobody badged for to the visit (they get priced then)."""
        with self.db() as db:
            for session in db.scalars(select(UsageSession).where(UsageSession.visit_id.is_(None))):
                if session.id not in forged:
                    attach_session(db, session.id, self.visit_id, actor="desk")
            db.commit()

    def _charged_once(self, db: Session, session: UsageSession) -> None:
        lines = list(db.scalars(select(ChargeLine).where(ChargeLine.session_id == session.id)))
        kinds = [line.kind for line in lines]
        assert session.state == "priced", f"session {session.id} is {session.state}\n{self.logs()}"
        assert kinds, f"session {session.id} was priced with no line at all"
        assert len(kinds) == len(set(kinds)), f"session {session.id} charged twice: {kinds}"

    def _billed_near(self, db: Session, session: UsageSession, truth: float) -> None:
        line = db.scalars(select(ChargeLine).where(ChargeLine.session_id == session.id,
                                                   ChargeLine.kind == "time")).one_or_none()  # fmt: skip
        billed = line.quantity * UNIT_S if line else 0  # no time line: nothing billed for time
        assert abs(float(billed) - truth) <= UNIT_S, (
            f"session {session.id} on {session.machine_id} billed {billed} s for {truth:.1f} s "
            f"(session_s={session.session_s}, job_s={session.job_s}, ended: {session.end_reason})"
        )

    def _no_gaps(self, db: Session) -> None:
        rows = db.execute(select(InboxEvent.agent, InboxEvent.stream, InboxEvent.seq)).all()
        streams: dict[tuple[str, str], list[int]] = {}
        for agent, stream, seq in rows:
            streams.setdefault((agent, stream), []).append(seq)
        for key, seqs in streams.items():
            assert sorted(seqs) == list(range(1, max(seqs) + 1)), f"seq gap in {key}: {sorted(seqs)}"
            position = db.get(StreamPosition, key)
            assert position is not None and position.upto == max(seqs), f"{key} committed only up to {position}"

    # -- teardown -------------------------------------------------------------------------

    def close(self) -> None:
        for agent in self.agents.values():
            if agent.proc and agent.proc.poll() is None:
                agent.proc.kill()
                agent.proc.wait(10)
            agent.proxy.close()
        self.kill_billing()
        for stoppable in (self.printer, self.grbl):
            if stoppable is not None:
                stoppable.stop()
        if self.badge is not None:
            self.badge.close()
        if self.mosquitto:
            self.mosquitto.kill()
        self.redis.kill()
        if self.engine:
            self.engine.dispose()


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def _tail(path: Path, size: int = 3000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else "(no log)"

