"""The live board: a card per machine from Redis, updated by server-sent events.

``GET /live/events`` streams the Redis stream ``fabmeter:changes``: each entry becomes an
event whose ``id:`` is the stream entry id and whose data is the machine's re-rendered card.
A reconnecting browser sends ``Last-Event-ID`` and gets every change after it. A stream lives
``SSE_LIFETIME_S`` seconds (the browser reconnects, resuming) so gunicorn threads turn over.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from billing.live import CHANGES
from billing.models import Machine
from dashboard.board import machine_card, read_cards
from dashboard.store import ledger, live

bp = Blueprint("live", __name__, url_prefix="/live")
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def machine_names() -> dict[str, str]:
    return {m.id: m.name for m in ledger().scalars(select(Machine).where(Machine.active))}


@bp.route("/")
def board() -> ResponseReturnValue:
    cards, last_id = read_cards(live(), machine_names())
    return render_template("live/board.html", cards=cards, last_id=last_id)


def start_id(client: Any) -> str:
    """Resume after ``Last-Event-ID`` (or ``?since=``), else start from now."""
    wanted = request.headers.get("Last-Event-ID") or request.args.get("since") or ""
    if STREAM_ID.match(wanted):
        return wanted
    last = client.xrevrange(CHANGES, count=1)
    return last[0][0] if last else "0-0"


def _event(entry_id: str, fields: dict[str, str], names: dict[str, str], wall: bool = False) -> str | None:
    try:
        state = json.loads(fields.get("state", ""))
    except ValueError:
        return None
    if not isinstance(state, dict):
        return None
    card = machine_card({k: str(v) for k, v in state.items()}, names.get(fields.get("machine", "")))
    html = render_template("live/card.html", card=card, wall=wall)
    data = json.dumps({"machine": card.machine, "state": card.shown_state, "html": html})
    return f"id: {entry_id}\nevent: machine\ndata: {data}\n\n"


def changes(client: Any, last_id: str, names: dict[str, str], *, lifetime_s: float, block_ms: int,
            wall: bool = False, alive: Callable[[], bool] = lambda: True) -> Iterator[str]:  # fmt: skip
    """SSE text: a retry hint, then one event per stream entry after ``last_id``, with keepalives.

    ``alive`` is asked before every wait: the stream ends as soon as it says no (a revoked wall link).
    """
    yield "retry: 2000\n\n"
    deadline = time.monotonic() + lifetime_s
    while time.monotonic() < deadline and alive():
        found = client.xread({CHANGES: last_id}, block=block_ms, count=200)
        if not found:
            yield ": keepalive\n\n"
            continue
        for _stream, entries in found:
            for entry_id, fields in entries:
                last_id = entry_id
                event = _event(entry_id, fields, names, wall)
                if event is not None:
                    yield event


@bp.route("/events")
def events() -> ResponseReturnValue:
    client = live()
    config = current_app.config
    names = machine_names()
    ledger().close()  # hold no database snapshot for the stream's lifetime (SQLite WAL)
    stream = changes(client, start_id(client), names,
                     lifetime_s=config["SSE_LIFETIME_S"], block_ms=config["SSE_BLOCK_MS"])  # fmt: skip
    response = Response(stream_with_context(stream), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx in front must not buffer the stream
    return response
