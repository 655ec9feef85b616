"""A check-in's PIN, shown on the page after the redirect, once, within a minute.

    keep(visit.id)        # after the check-in's commit, before the redirect
    take(visit)           # on the result page: the PIN the first time, None ever after

The PIN itself never leaves the ledger (it is sealed there for the allow-lists,
``billing.credentials.unseal``): the browser's session holds a one-time token and Redis holds
that token for 60 s; reading it deletes it, so a reload, a second tab or a copied cookie sees
no PIN. Without Redis the session alone keeps the token, still for one view within 60 s, but a
copy of the session cookie taken within that minute could show the PIN a second time.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

import redis
from flask import current_app, session

from billing.credentials import unseal
from billing.models import Visit
from dashboard.formats import now
from dashboard.store import live

log = logging.getLogger(__name__)

SHOWN_FOR_S = 60
SESSION_KEY = "pin_once"


def _key(token: str) -> str:
    return f"fabmeter:pin-once:{token}"


def keep(visit_id: int) -> None:
    token = secrets.token_urlsafe(16)
    until = (now() + timedelta(seconds=SHOWN_FOR_S)).timestamp()
    kept = {"visit": visit_id, "token": token, "until": until, "redis": True}
    try:
        live().set(_key(token), str(visit_id), ex=SHOWN_FOR_S)
    except redis.RedisError as err:
        log.warning("Redis is away (%s): the PIN of visit %s is held by the session only", err, visit_id)
        kept["redis"] = False
    session[SESSION_KEY] = kept


def take(visit: Visit) -> str | None:
    """The visit's PIN if this browser checked it in less than a minute ago and has not seen it."""
    kept = session.pop(SESSION_KEY, None)
    if not isinstance(kept, dict) or kept.get("visit") != visit.id or now().timestamp() > kept.get("until", 0):
        return None
    if kept.get("redis", True) and not _taken_from_redis(str(kept.get("token")), visit.id):
        return None
    pepper = current_app.config["FABMETER"].pepper
    pins = [c for c in visit.credentials if c.kind == "pin" and c.active]
    return unseal(pepper, pins[-1]) if pins else None


def _taken_from_redis(token: str, visit_id: int) -> bool:
    """Read and delete the token in one transaction: of two reads, only one finds it."""
    try:
        pipe = live().pipeline(transaction=True)
        pipe.get(_key(token))
        pipe.delete(_key(token))
        value, _deleted = pipe.execute()
    except redis.RedisError as err:  # went away since: the session's deadline still holds
        log.warning("Redis is away (%s): showing the PIN of visit %s on the session's word", err, visit_id)
        return True
    return bool(value == str(visit_id))
