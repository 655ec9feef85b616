"""The event log: the ledger's own record of what was done to it, chained and sealed like it.

    audit(db, "alice", "reprint", "R-000012", "DUPLICATA n° 1")   # a key action: also chained
    record_organisation(db, config.organisation)                  # at start, when it changed

Closures, reprints, credit notes, erasures, key changes, tariff and organisation changes and
staff logins are appended, as they happen, to one more hash chain (``EVENTS``): each event's
hash is SHA-256(previous hash + canonical JSON), sealed with the ledger key, its head anchored
with every closure. ``billing.audit.audit`` appends one for every action in ``CHAINED``; the
plain audit log (for the admin page) keeps everything else as well.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Integer, String, Text, inspect, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from billing.config import OrganisationConfig
from billing.models import Base, UTCDateTime, utcnow

log = logging.getLogger(__name__)

EVENTS = "EVENTS"  # the chain's code in ledger_chains


class Event(Base):
    """One chained event; ``content`` is its canonical, hashed JSON (the columns repeat it)."""

    __tablename__ = "ledger_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str | None] = mapped_column(String(120))
    detail: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


def append(
    db: Session, actor: str, action: str, subject: str | None, detail: str | None,
    now: datetime | None = None,
) -> Event:
    """Add the next event in the caller's transaction, its chain head locked until it ends."""
    from billing.ledger.chain import advance, lock_chain, parse_utc, utc_text
    from billing.ledger.seals import seal

    db.flush()  # on SQLite a write takes the database's write lock before the head is read
    chain = lock_chain(db, EVENTS)
    at = utc_text(now or utcnow())
    content = {"v": 1, "number": chain.last_number + 1, "at": at, "actor": actor, "action": action,
               "subject": subject, "detail": detail}  # fmt: skip
    text, prev, digest = advance(chain, content, parse_utc(at))
    event = Event(number=chain.last_number, at=parse_utc(at), actor=actor, action=action, subject=subject,
                  detail=detail, content=text, prev_hash=prev, hash=digest)  # fmt: skip
    db.add(event)
    seal(db, EVENTS, event.number, digest)
    db.flush()
    return event


def event_problem(event: Event) -> str | None:
    """Whether the columns beside the hashed content still say what the content says."""
    from billing.ledger.chain import load, utc_text

    try:
        content = load(event.content)
    except ValueError:
        return "content is not valid JSON"
    columns = {"number": event.number, "at": utc_text(event.at), "actor": event.actor,
               "action": event.action, "subject": event.subject, "detail": event.detail}  # fmt: skip
    for key, value in columns.items():
        if content.get(key) != value:
            return f"column {key} says {value!r} but the hashed content says {content.get(key)!r}"
    return None


def organisation_text(org: OrganisationConfig) -> str:
    return json.dumps(asdict(org), sort_keys=True, default=str, ensure_ascii=False)


def record_organisation(db: Session, org: OrganisationConfig, *, actor: str = "system") -> bool:
    """At start: chain the organisation's settings when they differ from the last recorded (commits)."""
    from billing.audit import audit

    if not inspect(db.connection()).has_table(Event.__tablename__):
        log.warning("the ledger has no event log yet: run 'fabmeter db upgrade'")
        db.rollback()
        return False
    text = organisation_text(org)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    last = db.scalars(
        select(Event.detail).where(Event.action == "organisation").order_by(Event.number.desc())
    ).first()
    if last is not None and last.startswith(digest):
        return False
    audit(db, actor, "organisation", org.name, f"{digest} {text}")
    db.commit()
    return True
