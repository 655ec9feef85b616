"""Wall-screen links: the live board, read-only, for a screen in the workshop with no staff login.

    link, token = make_link(db, "atelier", actor="alice")   # the token is shown once, never stored
    find_link(db, token)                                   # the WallLink, or None once revoked
    revoke(db, link.id, actor="alice")                     # the screen and its event stream stop

``GET /wall/<token>`` is the board and ``GET /wall/<token>/events`` its stream; both check the
token (its SHA-256 against ``wall_links``) on every request, and the stream checks it again on
every wait, so a revoked link stops within one wait. Cards there show a first name only.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

from flask import Blueprint, Response, abort, current_app, render_template, stream_with_context
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.errors import NotFound
from billing.models import WallLink, utcnow
from dashboard.board import read_cards
from dashboard.live import changes, machine_names, start_id
from dashboard.store import ledger, live, store

bp = Blueprint("wall", __name__, url_prefix="/wall")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def make_link(db: Session, label: str, *, actor: str) -> tuple[WallLink, str]:
    """A new link; the token is returned here only (the ledger keeps its SHA-256)."""
    token = secrets.token_urlsafe(24)
    link = WallLink(token_sha256=digest(token), label=label.strip()[:80] or "—", created_by=actor)
    db.add(link)
    db.flush()
    audit(db, actor, "make_wall_link", f"wall link {link.id}", link.label)
    return link, token


def find_link(db: Session, token: str) -> WallLink | None:
    if len(token) > 100:
        return None
    link = db.scalars(select(WallLink).where(WallLink.token_sha256 == digest(token))).first()
    return link if link is not None and link.revoked_at is None else None


def revoke(db: Session, link_id: int, *, actor: str) -> WallLink:
    link = db.get(WallLink, link_id)
    if link is None:
        raise NotFound("no wall link %(link)s", link=link_id)
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        audit(db, actor, "revoke_wall_link", f"wall link {link.id}", link.label)
    return link


def _valid(token: str) -> Callable[[], bool]:
    """Whether the link still works, asked with a short session of its own (the stream holds none)."""

    def check() -> bool:
        with store().session() as db:
            return find_link(db, token) is not None

    return check


@bp.route("/<token>")
def board(token: str) -> ResponseReturnValue:
    if find_link(ledger(), token) is None:
        abort(404)
    cards, last_id = read_cards(live(), machine_names())
    return render_template("live/board.html", cards=cards, last_id=last_id, wall=True, token=token)


@bp.route("/<token>/events")
def events(token: str) -> ResponseReturnValue:
    if find_link(ledger(), token) is None:
        abort(404)
    client, config, names = live(), current_app.config, machine_names()
    ledger().close()  # hold no database snapshot for the stream's lifetime (SQLite WAL)
    stream = changes(client, start_id(client), names, lifetime_s=config["SSE_LIFETIME_S"],
                     block_ms=config["SSE_BLOCK_MS"], wall=True, alive=_valid(token))  # fmt: skip
    response = Response(stream_with_context(stream), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
