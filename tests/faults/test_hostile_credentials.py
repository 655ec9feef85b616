"""Hostile agents and strangers against the credential side: auth answers, PIN lockout, allow-lists.

Each scenario runs through a real Mosquitto (generated ACL) and a real billing process, and shows
that pi-printer's prints are still committed and priced while pi-laser's credentials attack.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from billing.live import machine_key
from billing.lockouts import slowed_terminals
from billing.models import utcnow
from billing.visits import close_visit, open_visit
from broker import topics
from broker.errors import BadMessage
from broker.messages import Allowlist, AuthRequest, AuthResponse, decode, encode, list_digest
from dashboard.demo import BADGE
from tests.faults.site import PEPPER, Site, wait_until
from tests.faults.test_hostile import Client

pytestmark = pytest.mark.faults


def _request(client: Client, credential: str, *, kind: str = "pin", machine: str = "laser-1",
             response_topic: str | None = None) -> str:  # fmt: skip
    """Publish an auth request on pi-laser's own topic; the session id it names."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = response_topic or topics.auth_resp("pi-laser")
    props.CorrelationData = os.urandom(8)
    session = str(uuid.uuid4())
    request = AuthRequest(kind=kind, credential=credential, machine=machine, session=session)
    client.publish(topics.auth_req("pi-laser"), encode(request), properties=props)
    return session


def _answers(client: Client) -> dict[str, tuple[str, AuthResponse]]:
    """Session id → (topic, answer) of every auth answer the client received."""
    found = {}
    for message in list(client.received):
        try:
            answer = decode(AuthResponse, message.payload)
        except BadMessage:
            continue
        found[answer.session] = (message.topic, answer)
    return found


def _ask(client: Client, credential: str, *, kind: str = "pin") -> AuthResponse:
    session = _request(client, credential, kind=kind)
    return wait_until(lambda: _answers(client).get(session), 10, "billing's answer")[1]  # type: ignore[no-any-return]


def test_auth_answers_go_only_to_the_asking_agents_own_topic(site: Site) -> None:
    """pi-laser names pi-printer's auth/resp and cmd topics as ResponseTopic (billing may write
    anywhere, the broker would let it): the answers arrive on pi-laser's own auth/resp only, and
    pi-printer, listening with its own credentials, hears none of them."""
    site.start()
    site.start_agent("pi-printer")
    site.printer.wait_printing(True)  # type: ignore[union-attr]
    victim = Client(site, "pi-printer")
    attacker = Client(site, "pi-laser")
    assert victim.connected.wait(5) and attacker.connected.wait(5)
    victim.client.subscribe([(topics.auth_resp("pi-printer"), 1), (topics.cmd("pi-printer"), 1)])
    attacker.client.subscribe(topics.auth_resp("pi-laser"), qos=1)
    time.sleep(0.5)
    aimed = [
        topics.auth_resp("pi-printer"),
        topics.cmd("pi-printer"),
        "fabmeter/v1/machine/printer-1/state",
    ]
    sessions = [_request(attacker, site.pin, response_topic=topic) for topic in aimed]
    wait_until(
        lambda: all(s in _answers(attacker) for s in sessions), 10, "billing's answers", site
    )
    for session in sessions:
        topic, answer = _answers(attacker)[session]
        assert topic == topics.auth_resp("pi-laser") and answer.allow
    time.sleep(0.5)
    assert not set(sessions) & set(_answers(victim)), "an answer went where the request pointed"
    victim.close()
    attacker.close()
    site.check(jobs=site.settle())


def test_wrong_pins_from_an_agent_slow_only_its_own_pin_pad_for_a_short_while(
    tmp_path: Path,
) -> None:
    """pi-laser's credentials send 30 wrong PINs for laser-1 and 30 naming printer-1. The visitor's
    badge works throughout; their PIN works again after the short back-off (3 s here) with no staff;
    the board shows laser-1's PIN pad waiting; printer-1's pad is untouched and pi-printer's prints
    are committed and priced meanwhile."""
    site = Site(
        tmp_path, billing_extra="lockout_failures = 3\nbackoff_base_s = 1\nbackoff_max_s = 3\n"
    )
    try:
        site.start()
        site.start_agent("pi-printer")
        site.printer.wait_printing(True)  # type: ignore[union-attr]
        attacker = Client(site, "pi-laser")
        assert attacker.connected.wait(5)
        attacker.client.subscribe(topics.auth_resp("pi-laser"), qos=1)
        time.sleep(0.5)
        wrong = str((int(site.pin) + 1) % 1_000_000).zfill(6)
        guesses = [_request(attacker, wrong) for _ in range(30)]
        guesses += [_request(attacker, wrong, machine="printer-1") for _ in range(30)]
        wait_until(lambda: set(guesses) <= set(_answers(attacker)), 20, "billing's answers", site)
        reasons = [_answers(attacker)[s][1].reason for s in guesses]
        assert "too many wrong PINs" in reasons[-31] and not any(
            _answers(attacker)[s][1].allow for s in guesses
        )
        assert set(reasons[30:]) == {"printer-1 is not a machine of pi-laser"}
        assert _ask(attacker, BADGE, kind="badge").allow  # the badge never waits
        live = redis.Redis.from_url(site.redis.url, decode_responses=True)
        wait_until(
            lambda: live.hget(machine_key("laser-1"), "pin_wait_until"),
            5,
            "the board to show the wait",
            site,
        )
        assert not live.hget(machine_key("printer-1"), "pin_wait_until")
        started = time.monotonic()
        while not (answer := _ask(attacker, site.pin)).allow:
            assert "too many wrong PINs" in answer.reason and time.monotonic() - started < 5, (
                answer.reason
            )
            time.sleep(0.5)
        wait_until(
            lambda: not live.hget(machine_key("laser-1"), "pin_wait_until"),
            5,
            "the board to clear",
            site,
        )
        with site.db() as db:
            assert set(slowed_terminals(db, utcnow() - timedelta(days=1))) <= {"laser-1"}
        attacker.close()
        site.check(jobs=site.settle())
    finally:
        site.close()


def test_a_stolen_allowlist_names_nobody_and_each_list_has_its_own_salt(site: Site) -> None:
    """pi-laser's credentials read its retained allow-list, as from a stolen SD card: no visitor's
    name, Argon2id digests under a salt of its own; when a named visitor checks in the next list
    has a fresh salt (a table built for one list is useless for the next), still no name, and
    only visits open now. pi-printer's prints are priced meanwhile."""
    site.start()
    site.start_agent("pi-printer")
    site.printer.wait_printing(True)  # type: ignore[union-attr]
    thief = Client(site, "pi-laser")
    assert thief.connected.wait(5)
    thief.client.subscribe(topics.allowlist("pi-laser"), qos=1)
    lists = lambda: [decode(Allowlist, m.payload) for m in list(thief.received)]  # noqa: E731
    wait_until(lambda: lists(), 10, "the retained allow-list", site)
    first = lists()[-1]
    assert {e.visit for e in first.entries} == {str(site.visit_id)} and len(first.entries) == 2
    with site.db() as db:
        named = open_visit(db, pepper=PEPPER, category="walk-in", name="Camille Durand", actor="desk")
        db.commit()
        named_id, named_pin = named.visit.id, named.pin
    wait_until(lambda: len(lists()) >= 2, 15, "a new allow-list", site)
    second, raw = lists()[-1], thief.received[-1].payload
    assert second.salt != first.salt and (second.time_cost, second.memory_kib) == (2, 8_192)
    assert b"Camille" not in raw and b"Durand" not in raw and named_pin is not None
    assert named_pin.encode() not in raw and site.pin.encode() not in raw
    assert {e.visit for e in second.entries} == {str(site.visit_id), str(named_id)}
    assert list_digest(second, "pin", named_pin) in {e.credential for e in second.entries}
    assert list_digest(first, "pin", site.pin) not in {e.credential for e in second.entries}
    with site.db() as db:
        close_visit(db, named_id, "cash", actor="desk")
        db.commit()
    wait_until(lambda: {e.visit for e in lists()[-1].entries} == {str(site.visit_id)}, 15,
               "the closed visit to leave the list", site)  # fmt: skip
    thief.close()
    site.check(jobs=site.settle())
