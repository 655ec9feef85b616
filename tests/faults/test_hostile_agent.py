"""An attacker holding one agent's valid broker credentials (pi-laser), through a real Mosquitto and
billing, while pi-printer prints for real: whatever pi-laser sends, the printer's jobs are still
committed and priced, and nothing is charged that billing did not decide."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import select

from billing.health import HEALTH
from billing.models import AuditEntry, ChargeLine, UsageSession
from billing.visits import close_visit, open_visit, visit_total
from broker import topics
from broker.messages import MAX_PAYLOAD_BYTES, SessionStarted, UsageEvent, to_dict
from tests.faults.site import PEPPER, Site, wait_until
from tests.faults.test_hostile import Client

pytestmark = pytest.mark.faults


def _event(stream: str, seq: int, kind: str, session: str, data: dict[str, object]) -> bytes:
    body = to_dict(UsageEvent(stream=stream, seq=seq, machine="laser-1", type="session_started", session=session,
                              boot="b", mono_ns=1, wall_ns=1, wall_synced=False,
                              data=SessionStarted(auth="none")))  # fmt: skip
    body.update(type=kind, data=data)
    return json.dumps(body).encode()  # ensure_ascii: a lone surrogate travels as "\ud800"


def _health(site: Site) -> dict[str, object]:
    raw = redis.Redis.from_url(site.redis.url).get(HEALTH)
    return json.loads(raw or b"{}")  # type: ignore[no-any-return]


def test_poison_messages_stop_nothing(site: Site) -> None:
    """Finding 1 and 6: a lone surrogate, 2^63-1 seconds, 1e308 mm, a surrogate in a credential and in a
    state's job name, remaining_s = 2^62, and a 100 kB event: each is refused (the oversized one by
    the broker) and recorded; billing's threads never stop, and the printer is priced meanwhile."""
    site.start()
    site.start_agent("pi-printer")
    site.printer.wait_printing(True)  # type: ignore[union-attr]
    hostile = Client(site, "pi-laser")
    assert hostile.connected.wait(5)
    stream, session = str(uuid.uuid4()), str(uuid.uuid4())
    poison = [
        _event(stream, 1, "job_started", session, {"job": "\ud800.gcode"}),
        _event(stream, 2, "session_ended", session,
               {"reason": "badge_out", "session_s": 2**63 - 1, "busy_s": 0, "job_s": 0}),
        _event(stream, 3, "job_ended", session,
               {"job": "x", "outcome": "completed", "job_s": 1, "filament_mm": 1e308}),
    ]  # fmt: skip
    for payload in poison:
        hostile.publish(topics.agent_events("pi-laser"), payload)
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = topics.auth_resp("pi-laser")
    request = {"v": 1, "kind": "pin", "credential": "12\ud80034", "machine": "laser-1", "session": session}
    hostile.publish(topics.auth_req("pi-laser"), json.dumps(request).encode(), properties=props)
    state = {"v": 1, "machine": "laser-1", "state": "printing", "wall_ns": 1, "job": "\udfff", "remaining_s": 2**62}
    hostile.publish(topics.machine_state("laser-1"), json.dumps(state).encode())
    hostile.client.publish(topics.agent_events("pi-laser"), b"{" + b" " * (MAX_PAYLOAD_BYTES + 100_000), qos=1)
    wait_until(lambda: len(site.rejected()) >= 5, 15, "five rejected messages", site)
    time.sleep(1)
    hostile.close()
    reasons = sorted(r.reason for r in site.rejected())
    assert len(reasons) == 5, reasons  # the 100 kB event never reached billing
    assert sum("lone surrogate" in r for r in reasons) == 3 and sum("between 0 and" in r for r in reasons) == 2
    assert all(len(r.payload) <= 4096 for r in site.rejected())
    site.check(jobs=site.settle())  # every print committed, priced once, billed to the second
    assert site.billing is not None and site.billing.poll() is None
    health = _health(site)
    assert health["problems"] == [] and all(p["restarts"] == 0 for p in health["parts"].values())  # type: ignore[attr-defined]


def _lines(site: Site, session: str) -> list[ChargeLine]:
    with site.db() as db:
        return list(db.scalars(select(ChargeLine).where(ChargeLine.session_id == session)))


def test_an_agent_cannot_charge_a_visit_billing_did_not_grant(site: Site) -> None:
    """Finding 2: pi-laser's credentials claim visit 7 online with no credential ever presented, and
    offline with a digest no allow-list held, then end ten-hour sessions: both stay unclaimed, shown
    to staff, charged to nobody. Meanwhile the real pi-laser agent badges in (billing's own answer)
    and is charged, and the printer's jobs are priced."""
    site.start()
    site.start_agent("pi-printer")
    site.start_agent("pi-laser")
    hostile = Client(site, "pi-laser")
    assert hostile.connected.wait(5)
    stream, forged = str(uuid.uuid4()), [str(uuid.uuid4()), str(uuid.uuid4())]
    claims: list[dict[str, object]] = [{"auth": "online", "visit": str(site.visit_id)},
              {"auth": "offline", "visit": str(site.visit_id), "credential": "ab" * 32}]  # fmt: skip
    seq = 0
    for session, claim in zip(forged, claims, strict=True):
        for kind, data in (("session_started", claim),
                           ("session_ended", {"reason": "badge_out", "session_s": 36_000, "busy_s": 36_000,
                                              "job_s": 0})):  # fmt: skip
            seq += 1
            hostile.publish(topics.agent_events("pi-laser"), _event(stream, seq, kind, session, data))
    hostile.close()
    site.laser_session(3)
    jobs = site.settle()
    with site.db() as db:
        mine = {s.id: s for s in db.scalars(select(UsageSession).where(UsageSession.id.in_(forged)))}
        refused = list(db.scalars(select(AuditEntry.detail).where(AuditEntry.action == "claim_refused")))
    assert [mine[s].visit_id for s in forged] == [None, None] and [mine[s].state for s in forged] == ["ended"] * 2
    assert all(_lines(site, s) == [] for s in forged) and len(refused) == 2
    site.check(jobs=jobs, forged=frozenset(forged))  # the badge session and the prints: charged once


def test_usage_that_arrives_after_its_visit_closed_waits_for_a_new_document(site: Site) -> None:
    """The laser's link is cut; a visitor badges in, accepted offline from the allow-list (an entry
    billing published to pi-laser), and out; the desk closes the visit meanwhile. When the link
    comes back the session is kept, never charged to the closed visit, and shown as 'after close';
    staff attach it to a new visit, which is charged. The printer is priced throughout."""
    site.start()
    site.start_agent("pi-printer")
    site.start_agent("pi-laser")
    time.sleep(2)  # the retained allow-list reaches the agent
    site.proxy("pi-laser").mode = "blackhole"
    site.laser_session(3)
    with site.db() as db:
        close_visit(db, site.visit_id, "cash", actor="desk")
        db.commit()
    site.proxy("pi-laser").mode = "pass"
    site.proxy("pi-laser").reset_all()
    late = wait_until(lambda: [s for s in site.sessions("laser-1") if s.after_close_of], 60, "the late session", site)
    assert late[0].auth == "offline" and late[0].visit_id is None and _lines(site, late[0].id) == []
    with site.db() as db:
        assert visit_total(db, site.visit_id) == 0
        site.visit_id = open_visit(db, pepper=PEPPER, category="walk-in", actor="desk").visit.id
        db.commit()
    site.check(jobs=site.settle())  # staff attach the late session (and the prints) to the new visit
    with site.db() as db:
        assert visit_total(db, site.visit_id) > 0


def test_an_agent_cannot_reach_past_its_own_machines(site: Site) -> None:
    """Finding 5: pi-laser ends pi-printer's running session (naming laser-1), sends a state naming
    printer-1 on laser-1's topic and a status claiming printer-1: all rejected and recorded; the
    printer's sessions are billed to the second and its live card keeps its own agent."""
    site.start()
    site.start_agent("pi-printer")
    victim = wait_until(lambda: site.open_sessions("printer-1"), 30, "a printer session", site)[0]
    hostile = Client(site, "pi-laser")
    assert hostile.connected.wait(5)
    ended = {"reason": "badge_out", "session_s": 30_000, "busy_s": 30_000, "job_s": 30_000}
    hostile.publish(topics.agent_events("pi-laser"), _event(str(uuid.uuid4()), 1, "session_ended", victim.id, ended))
    state = {"v": 1, "machine": "printer-1", "state": "error", "wall_ns": 1, "job": "forged"}
    hostile.publish(topics.machine_state("laser-1"), json.dumps(state).encode())
    status = {"v": 1, "online": True, "bdseq": 1, "version": "1", "machines": ["laser-1", "printer-1"]}
    hostile.publish(topics.agent_status("pi-laser"), json.dumps(status).encode())
    wait_until(lambda: len(site.rejected()) >= 3, 15, "three rejected messages", site)
    hostile.close()
    reasons = sorted(r.reason for r in site.rejected())
    assert f"session {victim.id} was opened by pi-printer on printer-1" in reasons[1], reasons
    site.check(jobs=site.settle())  # no 833 € session: every print billed within a unit of the truth
    card = redis.Redis.from_url(site.redis.url, decode_responses=True).hgetall("fabmeter:machine:printer-1")
    assert card.get("agent") == "pi-printer" and card.get("job") != "forged"
