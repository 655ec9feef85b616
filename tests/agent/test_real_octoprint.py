"""The real thing: OctoPrint 1.11 from PyPI and its virtual printer, the real agent process, the real
billing service, a private mosquitto and redis-server. What billing charges is checked against what
OctoPrint itself reports (``GET /api/job``: ``progress.printTime``, ``progress.completion``,
``job.filament.tool0.length``; docs.octoprint.org, "Job operations").

Runs in ``make test`` (marked slow: about two minutes); skipped only when the package index that
OctoPrint installs from cannot be reached.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from billing.charges import attach_session
from billing.config import ServerConfig
from billing.database import make_engine, upgrade
from billing.models import ChargeLine, FilamentCorrection, UsageSession
from billing.pricing import MaterialPrice, filament_grams
from billing.seed import seed
from billing.service import BillingService
from billing.tariffs import set_tariff
from billing.visits import open_visit
from broker.services import PrivateMosquitto, PrivateRedis
from tests.agent.real_octoprint import ROOT, RealOctoPrint, gcode
from tests.billing.conftest import PEPPER

pytestmark = pytest.mark.slow

STEPS = 40  # quarter-second dwells: a print of about 10 s
FILE_MM = STEPS * 2.5  # what OctoPrint's analysis finds in it
PLA = MaterialPrice("PLA", Decimal("1.75"), Decimal("1.24"), Decimal("0.06"))
SLACK_S = 2  # the agent polls every 0.5 s: a start and an end each seen up to a poll late


@pytest.fixture
def octo(tmp_path: Path) -> Iterator[RealOctoPrint]:
    with RealOctoPrint(tmp_path) as running:
        yield running


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[tuple[str, sessionmaker[Session]]]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory.begin() as db:
        seed(db)
        # one cent per second of job time: the billed time reads as seconds
        set_tariff(db, "printer-1", "walk-in", unit_price_cents=1, unit_s=1, basis="job", material_applies=True,
                   actor="test")  # fmt: skip
    yield url, factory
    engine.dispose()


@pytest.fixture
def billing(tmp_path: Path, ledger: tuple[str, Any], mosquitto: PrivateMosquitto,
            redis_server: PrivateRedis) -> Iterator[BillingService]:  # fmt: skip
    (tmp_path / "pepper").write_text(PEPPER)
    path = tmp_path / "server.toml"
    path.write_text(
        f'database_url = "{ledger[0]}"\nredis_url = "{redis_server.url}"\npepper_file = "pepper"\n'
        f'[mqtt]\nport = {mosquitto.port}\nclient_id = "billing-real-octoprint"\n'
        '[organisation]\nname = "Fablab"\naddress = "Ici"\nsiret = "1"\n[billing]\ntick_s = 0.1\n'
    )
    service = BillingService(ServerConfig.from_file(path, environ={}))
    service.start()
    assert service.events.connected.wait(10)
    yield service
    service.stop()


@pytest.fixture
def agent(tmp_path: Path, octo: RealOctoPrint, mosquitto: PrivateMosquitto,
          billing: BillingService) -> Iterator[subprocess.Popen[str]]:  # fmt: skip
    (tmp_path / "octoprint.key").write_text(octo.api_key + "\n")
    config = tmp_path / "agent.toml"
    config.write_text(f"""
agent_id = "pi-printer"
[mqtt]
port = {mosquitto.port}
[outbox]
path = "{tmp_path / 'outbox.db'}"
[agent]
poll_s = 0.5
filament_wait_s = 2
[[machines]]
id = "printer-1"
driver = "octoprint"
url = "{octo.url}"
api_key_file = "{tmp_path / 'octoprint.key'}"
material = "pla"
""")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "fabmeter", "agent", "--config", str(config)], cwd=tmp_path,
                               env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(2)  # its first polls see the printer idle
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    finally:
        process.kill()


def until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"waited {timeout} s for {what}")


def state(octo: RealOctoPrint) -> str:
    return str(octo.job()["state"])


def finished(octo: RealOctoPrint) -> dict[str, Any]:
    """Waits for the print to end; OctoPrint's figures for it."""
    job: dict[str, Any] = until(lambda: (j := octo.job())["state"].startswith("Operational") and j, "the end")
    return dict(job["progress"])


def printing(octo: RealOctoPrint, above: float = 0.0) -> None:
    until(lambda: (j := octo.job())["state"] == "Printing" and (j["progress"]["completion"] or 0) > above,
          f"printing past {above} %")  # fmt: skip


def sessions(factory: sessionmaker[Session]) -> list[UsageSession]:
    with factory() as db:
        return list(db.scalars(select(UsageSession).order_by(UsageSession.started_at)))


def ended(factory: sessionmaker[Session], count: int) -> list[UsageSession]:
    def done() -> list[UsageSession] | None:
        found = [s for s in sessions(factory) if s.state != "open"]
        return found if len(found) >= count else None

    try:
        found: list[UsageSession] = until(done, f"{count} ended sessions in billing", timeout=30)
    except AssertionError as err:
        seen = [(s.state, s.job_state, s.job_progress_milli, s.job_s, s.end_reason) for s in sessions(factory)]
        raise AssertionError(f"{err}; billing has {seen}") from None
    return found


def billed(factory: sessionmaker[Session], session_id: str) -> tuple[int, Decimal]:
    """(seconds, grams) charged for a session attached to a fresh walk-in visit."""
    with factory.begin() as db:
        visit = open_visit(db, pepper=PEPPER, category="walk-in", actor="test").visit
        db.flush()
        attach_session(db, session_id, visit.id, actor="test")
        lines = db.scalars(select(ChargeLine).where(ChargeLine.visit_id == visit.id)).all()
        seconds = sum(int(line.quantity) for line in lines if line.kind == "time")
        grams = sum((line.quantity for line in lines if line.kind == "material"), Decimal(0))
        return seconds, grams


def test_real_octoprint_prints_are_billed_as_octoprint_saw_them(
    octo: RealOctoPrint, agent: subprocess.Popen[str], ledger: tuple[str, sessionmaker[Session]]
) -> None:
    factory = ledger[1]
    octo.upload("cube.gcode", gcode(STEPS))
    assert octo.analysed("cube.gcode") == FILE_MM
    seen: list[dict[str, Any]] = []

    # a complete print
    octo.post("/api/files/local/cube.gcode", {"command": "select", "print": True})
    seen.append(finished(octo))
    # a cancel past 40 %: OctoPrint 1.11 then shows no progress at all (completion, printTime null),
    # so what counts is the last progress the agent saw, at most one poll before the cancel
    octo.post("/api/job", {"command": "start"})
    printing(octo, 40.0)
    at_cancel = dict(octo.job()["progress"])
    octo.post("/api/job", {"command": "cancel"})
    assert finished(octo)["completion"] is None
    seen.append(at_cancel)
    # a pause of 3 s, then resume: OctoPrint's printTime leaves the pause out, the agent's job time
    # keeps it (the printer stays taken); its busy time leaves it out
    octo.post("/api/job", {"command": "start"})
    printing(octo, 30.0)
    paused_at = time.monotonic()
    octo.post("/api/job", {"command": "pause", "action": "pause"})
    until(lambda: state(octo) == "Paused", "the pause")
    time.sleep(3)
    octo.post("/api/job", {"command": "pause", "action": "resume"})
    paused_s = time.monotonic() - paused_at
    seen.append(finished(octo))
    # the same file twice, the second started as soon as the first ended (within one agent poll)
    octo.post("/api/job", {"command": "start"})
    seen.append(finished(octo))
    octo.post("/api/job", {"command": "start"})
    seen.append(finished(octo))
    # an emergency stop past 40 %: OctoPrint closes the connection, "Offline after error"
    octo.post("/api/job", {"command": "start"})
    printing(octo, 40.0)
    seen.append(dict(octo.job()["progress"]))
    octo.post("/api/printer/command", {"commands": ["M112"]})
    until(lambda: state(octo).startswith("Offline after error"), "the printer's error")

    runs = ended(factory, 6)
    assert agent.poll() is None, agent.stderr.read() if agent.stderr else ""
    told = [(s.job_state, s.job_progress_milli, s.job_s, s.end_reason) for s in runs]
    assert [s.job_state for s in runs] == ["completed", "cancelled", "completed", "completed", "completed", "failed"], told
    assert [s.job for s in runs] == ["cube.gcode"] * 6
    cancelled = runs[1]
    assert cancelled.job_progress_milli is not None
    assert at_cancel["completion"] - 10 <= cancelled.job_progress_milli / 1000 <= at_cancel["completion"] + 1
    stopped = runs[5]
    assert stopped.job_progress_milli is not None and stopped.job_progress_milli >= 30_000
    expected_mm = [Decimal(FILE_MM), Decimal(FILE_MM) * cancelled.job_progress_milli / 100_000] + [Decimal(FILE_MM)] * 3
    expected_mm.append(Decimal(FILE_MM) * stopped.job_progress_milli / 100_000)
    assert [s.filament_mm for s in runs] == [mm.quantize(Decimal("0.1")) for mm in expected_mm]
    pauses = [0.0, 0.0, paused_s, 0.0, 0.0, 0.0]
    for run, octoprint, paused in zip(runs, seen, pauses, strict=True):
        seconds, grams = billed(factory, run.id)
        assert abs(seconds - octoprint["printTime"] - paused) <= SLACK_S, (run.job_state, seconds, octoprint, paused)
        assert abs(run.busy_s - octoprint["printTime"]) <= SLACK_S, (run.job_state, run.busy_s, octoprint)
        assert grams == filament_grams(run.filament_mm, PLA)


def test_a_file_printed_right_after_upload_gets_its_filament_once_octoprint_analysed_it(
    octo: RealOctoPrint, agent: subprocess.Popen[str], ledger: tuple[str, sessionmaker[Session]]
) -> None:
    """OctoPrint starts analysing on upload, stops when the print starts and analyses again once idle
    (about 15 s for this file, throttled as a Pi would be): the job ends without its estimate."""
    factory = ledger[1]
    octo.upload("big.gcode", gcode(STEPS, pad=3000), print_now=True)
    figures = finished(octo)
    [run] = ended(factory, 1)
    assert (run.job_state, run.filament_mm) == ("completed", Decimal(0))
    with factory.begin() as db:  # staff attach the print to the visitor's visit before the estimate comes
        visit = open_visit(db, pepper=PEPPER, category="walk-in", actor="test").visit
        db.flush()
        attach_session(db, run.id, visit.id, actor="test")
        visit_id = visit.id

    def corrected() -> list[ChargeLine]:
        with factory() as db:
            lines = db.scalars(select(ChargeLine).where(ChargeLine.visit_id == visit_id)).all()
            return [line for line in lines if line.kind == "material"]

    [material] = until(corrected, "the material line of the late estimate", timeout=90)
    assert octo.analysed("big.gcode") == FILE_MM
    assert material.quantity == filament_grams(Decimal(FILE_MM), PLA)
    with factory() as db:
        [correction] = db.scalars(select(FilamentCorrection)).all()
        assert (correction.state, correction.session_id) == ("applied", run.id)
        time_lines = db.scalars(select(ChargeLine).where(ChargeLine.visit_id == visit_id, ChargeLine.kind == "time"))
        assert abs(sum(int(line.quantity) for line in time_lines) - figures["printTime"]) <= SLACK_S
