"""Staff login: throttled per account and per address, every attempt audited, sessions revocable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from billing.models import AuditEntry, StaffUser
from dashboard.staff import set_password
from dashboard.throttle import FREE_FAILURES, delay_s
from tests.dashboard.conftest import PASSWORD, login

START = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def from_address(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_failed_logins_make_the_account_and_address_wait_longer_each_time(make_app: Callable[..., Flask]) -> None:
    clock = Clock()
    app = make_app(CLOCK=clock)
    client = from_address(app, "192.0.2.7")
    codes = [login(client, "alice", f"guess {i}").status_code for i in range(FREE_FAILURES + 1)]
    assert codes == [401] * (FREE_FAILURES + 1)
    held = login(client, "alice", PASSWORD)  # even the right password waits: it is not checked
    assert held.status_code == 429 and "réessayez dans 1 s" in held.text
    clock.advance(1)
    assert login(client, "alice", "guess again").status_code == 401
    assert "réessayez dans 2 s" in login(client, "alice", PASSWORD).text
    clock.advance(2)
    assert login(client, "alice", PASSWORD).status_code == 302


def test_another_account_from_another_address_is_not_held_up(make_app: Callable[..., Flask]) -> None:
    app = make_app(CLOCK=Clock())
    stranger = from_address(app, "198.51.100.4")
    for i in range(12):
        login(stranger, "alice", f"guess {i}")
    assert login(from_address(app, "192.0.2.8"), "bob", PASSWORD).status_code == 302
    assert login(from_address(app, "192.0.2.8"), "alice", PASSWORD).status_code == 429  # alice waits a little


def test_two_hundred_guesses_take_hours_not_twenty_seconds() -> None:
    """The issue's attack: 200 passwords in 20 s. Waiting out every delay now takes this long."""
    from_one_address = sum(delay_s("addr:198.51.100.4", n) for n in range(1, 201))
    on_one_account = sum(delay_s("user:alice", n) for n in range(1, 201))
    assert from_one_address > 40 * 3600 and on_one_account > 3 * 3600
    assert max(delay_s("user:alice", n) for n in range(1, 1000)) == 60  # a colleague waits a minute at most


def test_failures_and_successes_are_audited_with_the_address(make_app: Callable[..., Flask], db: Session) -> None:
    app = make_app(CLOCK=Clock())
    client = from_address(app, "192.0.2.7")
    login(client, "alice", "not the password")
    login(client, "nobody", "whatever")
    login(client, "alice", PASSWORD)
    entries = [(e.actor, e.action, e.subject, e.detail) for e in db.query(AuditEntry).order_by(AuditEntry.id)
               if e.action.startswith("login")]  # fmt: skip
    assert entries == [
        ("anonymous", "login_failed", "user alice", "from 192.0.2.7"),
        ("anonymous", "login_failed", "user nobody", "from 192.0.2.7"),
        ("alice", "login", "user alice", "from 192.0.2.7"),
    ]


def test_logout_ends_every_session_of_that_user_even_a_copied_cookie(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    desk, office = app.test_client(), app.test_client()
    assert login(desk, "alice").status_code == 302 and login(office, "alice").status_code == 302
    cookie = desk.get_cookie("fabmeter_session")
    assert cookie is not None
    assert desk.post("/logout").status_code == 302
    assert office.get("/desk/").status_code == 302  # the other browser is logged out too
    replay = app.test_client()
    replay.set_cookie("fabmeter_session", cookie.value)
    assert replay.get("/desk/").status_code == 302
    assert login(desk, "alice").status_code == 302 and desk.get("/desk/").status_code == 200


def test_a_new_password_ends_every_session_of_that_user(make_app: Callable[..., Flask], db: Session) -> None:
    app = make_app()
    bob, alice = app.test_client(), app.test_client()
    assert login(bob, "bob").status_code == 302 and login(alice, "alice").status_code == 302
    user = db.query(StaffUser).filter_by(username="bob").one()
    set_password(db, user, "a brand new password", actor="alice")
    db.commit()
    assert bob.get("/desk/").status_code == 302
    assert alice.get("/desk/").status_code == 200  # only bob's sessions ended
    assert login(bob, "bob", "a brand new password").status_code == 302
