"""A print started without badging is claimed by the visitor who badges at the printer while it runs.

The agent is the real one (its OctoPrint driver against tests/agent/fake_octoprint.py, which serves
responses recorded from OctoPrint's REST API: /api/printer, /api/job) and billing the real service,
both on a private mosquitto; only the badge reader is played, by putting the credential the RDM6300
reader would hand over on the agent's queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.auth import Credential
from agent.config import AgentConfig, MachineConfig, MqttConfig
from agent.machines.octoprint import OctoPrint
from agent.main import Agent
from billing.charges import attach_session
from billing.grants import claim_running
from billing.models import AuditEntry, ChargeLine, UsageSession
from billing.service import BillingService
from billing.visits import open_visit
from broker.messages import AuthRequest
from broker.services import PrivateMosquitto
from tests.agent.fake_octoprint import FakeOctoPrint
from tests.billing.agentsim import AgentSim
from tests.billing.conftest import PEPPER
from tests.billing.test_service import (
    config_path,  # noqa: F401 (fixture)
    service,  # noqa: F401 (fixture)
)

BADGE, OTHER_BADGE = "0A1B2C3D4E", "0B2C3D4E5F"
STARTED = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def octo() -> Iterator[FakeOctoPrint]:
    with FakeOctoPrint(api_key="k") as fake:
        yield fake


@pytest.fixture
def printer_agent(tmp_path: Path, mosquitto: PrivateMosquitto, octo: FakeOctoPrint) -> Iterator[Agent]:
    machine = MachineConfig(id="printer-1", driver="octoprint", url=octo.url)
    config = AgentConfig("pi-printer", MqttConfig(port=mosquitto.port), tmp_path / "outbox.db",
                         machines=(machine,), auth_timeout_s=5)  # fmt: skip
    agent = Agent(config, drivers={"printer-1": OctoPrint("printer-1", url=octo.url, api_key="k")},
                  start_readers=False)  # fmt: skip
    agent.link.start()
    yield agent
    agent.link.stop()
    agent.close()


def until(agent: Agent, test: Callable[[], Any], timeout: float = 15) -> Any:
    """Run the agent's loop until ``test()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        agent.tick()
        found = test()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def present(agent: Agent, uid: str) -> None:
    agent.credentials.put(Credential("badge", uid, "printer-1"))
    agent.tick()


def printing_unclaimed(agent: Agent, octo: FakeOctoPrint, db: Session) -> UsageSession:
    octo.show("printing")

    def seen() -> UsageSession | None:
        db.expire_all()
        return db.scalars(select(UsageSession).where(UsageSession.machine_id == "printer-1")).first()

    session: UsageSession = until(agent, seen)
    assert session.visit_id is None and session.state == "open"
    return session


def badged_visit(db: Session, uid: str) -> int:
    visit = open_visit(db, pepper=PEPPER, category="walk-in", actor="t", badge_uid=uid).visit
    db.commit()
    return visit.id


def test_a_badge_during_an_unclaimed_print_gives_its_cost_to_that_visit(
    service: BillingService, printer_agent: Agent, octo: FakeOctoPrint, db: Session,  # noqa: F811
) -> None:  # fmt: skip
    visit_id = badged_visit(db, BADGE)
    session = printing_unclaimed(printer_agent, octo, db)
    present(printer_agent, BADGE)
    track = printer_agent.tracks["printer-1"].session
    assert track is not None and track.id == session.id and track.auth == "online"
    db.expire_all()
    assert db.get(UsageSession, session.id).visit_id == visit_id  # type: ignore[union-attr]
    octo.show("completed")

    def priced() -> list[ChargeLine]:
        db.expire_all()
        return list(db.scalars(select(ChargeLine).where(ChargeLine.session_id == session.id)))

    lines = until(printer_agent, priced)
    assert {line.visit_id for line in lines} == {visit_id}
    assert [line.kind for line in lines] == ["material"]  # inside the 5-minute grace: filament only
    assert lines[0].amount_cents > 0
    audit = db.scalars(select(AuditEntry.detail).where(AuditEntry.action == "claim_running")).all()
    assert audit == [f"visit {visit_id}"]


def test_a_badge_during_someone_elses_print_is_refused_and_charges_them_nothing(
    service: BillingService, printer_agent: Agent, octo: FakeOctoPrint, db: Session,  # noqa: F811
) -> None:  # fmt: skip
    owner, other = badged_visit(db, BADGE), badged_visit(db, OTHER_BADGE)
    session = printing_unclaimed(printer_agent, octo, db)
    present(printer_agent, BADGE)
    present(printer_agent, OTHER_BADGE)  # refused on the agent: the print is claimed
    assert printer_agent.tracks["printer-1"].session.auth == "online"  # type: ignore[union-attr]
    octo.show("completed")

    def priced() -> UsageSession | None:
        db.expire_all()
        found = db.get(UsageSession, session.id)
        return found if found and found.state == "priced" else None

    until(printer_agent, priced)
    visits = set(db.scalars(select(ChargeLine.visit_id).where(ChargeLine.session_id == session.id)))
    assert visits == {owner} and other not in visits


def test_billing_refuses_a_claim_of_a_print_staff_gave_to_another_visit(
    service: BillingService, printer_agent: Agent, octo: FakeOctoPrint, db: Session,  # noqa: F811
) -> None:  # fmt: skip
    owner, other = badged_visit(db, BADGE), badged_visit(db, OTHER_BADGE)
    session = printing_unclaimed(printer_agent, octo, db)
    attach_session(db, session.id, owner, actor="alice")  # at the desk; the agent does not know
    db.commit()
    present(printer_agent, OTHER_BADGE)
    assert printer_agent.tracks["printer-1"].session.auth == "none"  # type: ignore[union-attr]
    db.expire_all()
    assert db.get(UsageSession, session.id).visit_id == owner  # type: ignore[union-attr]
    assert other != owner


@pytest.mark.parametrize(
    ("agent", "machine", "state", "owner", "reason"),
    [
        ("pi-laser", "printer-1", "open", None, "is not one of pi-laser's on printer-1"),
        ("pi-printer", "laser-1", "open", None, "is not one of pi-printer's on laser-1"),
        ("pi-printer", "printer-1", "open", "other", "printer-1 is in use by another visit"),
        ("pi-printer", "printer-1", "ended", None, "the use of printer-1 has ended"),
        ("pi-printer", "printer-1", "open", "same", None),
        ("pi-printer", "printer-1", "open", None, None),
    ],
)
def test_claim_running_gives_only_an_open_unclaimed_session_of_that_agent_and_machine(
    db: Session, agent: str, machine: str, state: str, owner: str | None, reason: str | None
) -> None:
    visit_id, other = badged_visit(db, BADGE), badged_visit(db, OTHER_BADGE)
    sim = AgentSim("pi-printer", "printer-1")
    session = UsageSession(id=sim.session, agent="pi-printer", machine_id="printer-1", auth="none", state=state,
                           started_at=STARTED, session_s=0, busy_s=0, job_s=0, filament_mm_milli=0,
                           visit_id={"other": other, "same": visit_id}.get(owner or ""))  # fmt: skip
    db.add(session)
    db.flush()
    why = claim_running(db, agent, AuthRequest("badge", BADGE, machine, sim.session), visit_id)
    assert why == reason or (reason is not None and why is not None and reason in why)
    db.flush()
    db.expire_all()
    expected = visit_id if reason is None else {"other": other, "same": visit_id}.get(owner or "")
    assert db.get(UsageSession, sim.session).visit_id == expected  # type: ignore[union-attr]
