"""A wall-screen link: made by an admin, shown once, stored as its SHA-256, no staff login, first
names only, and revoking it stops the page and its event stream at once."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import fakeredis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from billing.live import LiveState
from billing.models import AuditEntry, WallLink
from broker.messages import AgentStatus, MachineState
from dashboard.live import changes
from dashboard.wall import _valid

SESSION = "6f0c2a3e-0000-4000-8000-000000000001"


def make(admin: FlaskClient, label: str = "atelier") -> str:
    page = admin.post("/admin/wall-links", data={"label": label})
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    found = re.search(r'id="wall-address">http://localhost/wall/([\w-]+)<', page.text)
    assert found is not None, page.text
    return found.group(1)


def printing_for(redis_client: Any, user: str) -> None:
    live = LiveState(redis_client, clock=lambda: 1_800_000_000)
    live.status("pi-printer", AgentStatus(online=True, bdseq=1, version="1", machines=("printer-1",)))
    live.state(MachineState(machine="printer-1", state="printing", wall_ns=0, job="boat.gcode", progress=37.0,
                            session=SESSION, user=user))  # fmt: skip


def test_a_wall_link_shows_the_board_without_login_and_first_names_only(
    app: Flask, admin: FlaskClient, db: Session, redis_client: Any
) -> None:
    token = make(admin)
    [link] = db.query(WallLink).all()
    assert link.token_sha256 == hashlib.sha256(token.encode()).hexdigest() and token not in link.token_sha256
    assert token not in admin.get("/admin/wall-links").text  # shown once, when made
    printing_for(redis_client, "Camille Martin")
    screen = app.test_client()  # nobody logged in
    page = screen.get(f"/wall/{token}")
    assert page.status_code == 200
    assert "Camille" in page.text and "Martin" not in page.text and "boat.gcode" in page.text
    assert 'href="/desk' not in page.text and "/admin" not in page.text
    assert f"/wall/{token}/events" in page.text
    stream = screen.get(f"/wall/{token}/events")
    assert stream.status_code == 200 and stream.mimetype == "text/event-stream"
    assert screen.get("/live/").status_code == 302  # the link opens the wall, nothing else
    assert screen.get("/wall/not-a-token").status_code == 404
    assert db.query(AuditEntry).filter_by(action="make_wall_link").count() == 1


def test_revoking_a_link_stops_its_page_and_stream_at_once(app: Flask, admin: FlaskClient, db: Session) -> None:
    token = make(admin)
    [link] = db.query(WallLink).all()
    screen = app.test_client()
    assert screen.get(f"/wall/{token}").status_code == 200
    with app.app_context():
        still = _valid(token)
        assert still()
        assert admin.post(f"/admin/wall-links/{link.id}/revoke").status_code == 302
        assert not still()  # an open stream asks this before every wait
    assert screen.get(f"/wall/{token}").status_code == 404
    assert screen.get(f"/wall/{token}/events").status_code == 404
    assert "révoqué" in admin.get("/admin/wall-links").text


def test_a_stream_ends_when_its_link_stops_working() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    answers = iter([True, True, False])
    sent = list(changes(client, "0-0", {}, lifetime_s=60, block_ms=1, wall=True, alive=lambda: next(answers)))
    assert sent == ["retry: 2000\n\n", ": keepalive\n\n", ": keepalive\n\n"]


def test_only_an_admin_makes_or_revokes_links(staff: FlaskClient) -> None:
    assert staff.get("/admin/wall-links").status_code == 403
    assert staff.post("/admin/wall-links", data={"label": "x"}).status_code == 403
    assert staff.post("/admin/wall-links/1/revoke").status_code == 403
