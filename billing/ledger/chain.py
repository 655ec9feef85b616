"""The tamper-evident ledger: canonical content, SHA-256 chains, closures and ``verify``.

    digest = link_hash(chain.last_hash, canonical(content))
    close_day(db, date(2026, 11, 26), tz=PARIS, actor="alice")   # commits
    verify(db)          # None, or Broken(link='R-000012', reason='content altered: ...')

Every document series and every kind of closure is one chain: a link's hash is
SHA-256(previous hash + canonical JSON). The canonical content holds a pseudonymous customer
reference, never a name, so erasing a person changes nothing that is hashed. Numbers are
given while the chain's head row is locked (``BEGIN IMMEDIATE`` on SQLite, ``SELECT … FOR
UPDATE`` on PostgreSQL), inside the transaction that writes the link.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.errors import InvalidOperation, NotFound
from billing.ledger.documents import CLOSURE_CHAINS, GENESIS, SERIES, Chain, Closure, Document
from billing.ledger.events import EVENTS, Event, event_problem
from billing.ledger.seals import anchor, anchor_problems, seal, seal_problems
from billing.models import utcnow


@dataclass(frozen=True)
class Broken:
    """The first link of the ledger that does not hold, and why."""

    link: str
    reason: str

    def __str__(self) -> str:
        return f"{self.link}: {self.reason}"


# ---------------------------------------------------------------- hashing


def canonical(content: Mapping[str, Any]) -> str:
    """The one JSON text of ``content`` that is hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link_hash(prev_hash: str, text: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{text}".encode()).hexdigest()


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def load(content: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(content)
    return data


# ---------------------------------------------------------------- locking


def begin_locked(db: Session) -> None:
    """Start the transaction that will add links; on SQLite take the write lock right away.

    SQLite: ``BEGIN IMMEDIATE`` makes a second writer wait (busy timeout) instead of reading a
    number that is about to be taken. PostgreSQL locks the chain's row (``lock_chain``).
    """
    conn = db.connection()
    if conn.dialect.name != "sqlite":
        return
    if conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        raise InvalidOperation(
            "a document must be numbered in its own transaction: commit or roll back the session first"
        )
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def lock_chain(db: Session, code: str) -> Chain:
    """The head of chain ``code``, locked until the transaction ends, read fresh."""
    query = select(Chain).where(Chain.code == code).with_for_update()
    chain = db.scalars(query.execution_options(populate_existing=True)).first()
    if chain is None:
        raise NotFound("no ledger chain %(code)r: run 'fabmeter db upgrade'", code=code)
    return chain


def advance(chain: Chain, content: Mapping[str, Any], now: datetime) -> tuple[str, str, str]:
    """Move the locked head one link on: returns (canonical text, previous hash, new hash)."""
    text = canonical(content)
    prev = chain.last_hash
    digest = link_hash(prev, text)
    chain.last_number += 1
    chain.last_hash = digest
    chain.updated_at = now
    return text, prev, digest


# ---------------------------------------------------------------- closures


@dataclass(frozen=True)
class Period:
    """A day or a month in the fablab's time zone, with its bounds in UTC."""

    kind: str
    label: str
    start: datetime
    end: datetime


def day_period(day: date, tz: tzinfo) -> Period:
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return Period("day", day.isoformat(), start.astimezone(UTC), end.astimezone(UTC))


def previous_day(now: datetime, tz: tzinfo) -> date:
    """The local day before ``now``'s: what a closure run at 00:05 (or 23:59) closes by default."""
    return now.astimezone(tz).date() - timedelta(days=1)


def previous_month(now: datetime, tz: tzinfo) -> tuple[int, int]:
    """(year, month) of the local month before ``now``'s."""
    last = now.astimezone(tz).date().replace(day=1) - timedelta(days=1)
    return last.year, last.month


def month_period(year: int, month: int, tz: tzinfo) -> Period:
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return Period("month", f"{year:04d}-{month:02d}", start.astimezone(UTC), end.astimezone(UTC))


def year_period(year: int, tz: tzinfo) -> Period:
    """A fiscal year, taken as the calendar year in the fablab's time zone."""
    start, end = datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)
    return Period("year", f"{year:04d}", start.astimezone(UTC), end.astimezone(UTC))


def _documents_between(db: Session, start: datetime, end: datetime) -> list[Document]:
    query = select(Document).where(Document.issued_at >= start, Document.issued_at < end)
    return list(
        db.scalars(query.order_by(Document.id), execution_options={"populate_existing": True})
    )


def _grand_total(db: Session, end: datetime) -> int:
    query = select(func.coalesce(func.sum(Document.total_cents), 0)).where(Document.issued_at < end)
    return int(db.scalar(query) or 0)


def closure_figures(db: Session, start: datetime, end: datetime) -> dict[str, Any]:
    """What a closure of [start, end) records, computed from the documents themselves."""
    documents = _documents_between(db, start, end)
    totals: dict[str, int] = {}
    for doc in documents:
        for method, cents in load(doc.content)["payments"].items():  # a split counts each part
            totals[method] = totals.get(method, 0) + cents
    return {
        "start": utc_text(start),
        "end": utc_text(end),
        "documents": len(documents),
        "digest": hashlib.sha256("\n".join(d.hash for d in documents).encode()).hexdigest(),
        "totals": totals,
        "total_cents": sum(totals.values()),
        "grand_total_cents": _grand_total(db, end),
    }


def close_period(
    db: Session, period: Period, *, actor: str, now: datetime | None = None,
    anchors: Path | None = None,
) -> Closure:
    """Record the closure of a finished period, in its own locked transaction (committed).

    With ``anchors``, its hash, digest and every chain head are also appended to that file.
    """
    now = now or utcnow()
    if period.end > now:
        raise InvalidOperation(
            "the %(kind)s %(period)s is not over yet: close it once it has ended", kind=period.kind, period=period.label
        )
    begin_locked(db)
    try:
        closure = _add_closure(db, period, actor, now)
        if anchors is not None:
            anchor(anchors, db, closure)  # before the commit: a closure is never left unanchored
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return closure


def _add_closure(db: Session, period: Period, actor: str, now: datetime) -> Closure:
    chain = lock_chain(db, CLOSURE_CHAINS[period.kind])
    same = select(Closure).where(Closure.kind == period.kind, Closure.period == period.label)
    if db.scalars(same).first():
        raise InvalidOperation("the %(kind)s %(period)s is already closed", kind=period.kind, period=period.label)
    content = {"v": 1, "kind": period.kind, "period": period.label, "number": chain.last_number + 1,
               "closed_at": utc_text(now), **closure_figures(db, period.start, period.end)}  # fmt: skip
    text, prev, digest = advance(chain, content, now)
    closure = Closure(
        kind=period.kind, period=period.label, number=chain.last_number, closed_at=parse_utc(content["closed_at"]),
        closed_by=actor, total_cents=content["total_cents"], grand_total_cents=content["grand_total_cents"],
        content=text, prev_hash=prev, hash=digest,
    )  # fmt: skip
    db.add(closure)
    seal(db, chain.code, closure.number, digest)
    audit(db, actor, f"close_{period.kind}", period.label, f"{content['total_cents']} cents", now=now)
    db.flush()
    return closure


def close_day(
    db: Session, day: date, *, tz: tzinfo, actor: str, now: datetime | None = None,
    anchors: Path | None = None,
) -> Closure:
    return close_period(db, day_period(day, tz), actor=actor, now=now, anchors=anchors)


def close_month(
    db: Session, year: int, month: int, *, tz: tzinfo, actor: str, now: datetime | None = None,
    anchors: Path | None = None,
) -> Closure:
    return close_period(db, month_period(year, month, tz), actor=actor, now=now, anchors=anchors)


def close_year(
    db: Session, year: int, *, tz: tzinfo, actor: str, now: datetime | None = None,
    anchors: Path | None = None,
) -> Closure:
    return close_period(db, year_period(year, tz), actor=actor, now=now, anchors=anchors)


# ---------------------------------------------------------------- verification


def verify(db: Session, *, key: str | None = None, anchors: Path | None = None) -> Broken | None:
    """Recompute every chain and closure; the first link that does not hold, or None."""
    return next(problems(db, key=key, anchors=anchors), None)


def problems(
    db: Session, *, key: str | None = None, anchors: Path | None = None
) -> Iterator[Broken]:
    """Every broken link, series by series in number order, then closures, then the event log.

    With ``key`` (the ledger key), every link of its segment must carry a valid seal; with
    ``anchors``, every closure and chain head recorded there must still be in the database.
    """
    fresh = {"populate_existing": True}  # what the database holds, not what this session remembers
    chains = {c.code: c for c in db.scalars(select(Chain), execution_options=fresh)}
    links: dict[str, list[tuple[str, int, str]]] = {}
    for code in SERIES:
        query = (
            select(Document).where(Document.series == code).order_by(Document.number, Document.id)
        )
        documents = list(db.scalars(query, execution_options=fresh))
        links[code] = [(d.reference, d.number, d.hash) for d in documents]
        yield from _chain_problems(code, chains.get(code), documents, lambda d: _document_problem(db, d))
    for kind, code in CLOSURE_CHAINS.items():
        rows = select(Closure).where(Closure.kind == kind).order_by(Closure.number, Closure.id)
        closures = list(db.scalars(rows, execution_options=fresh))
        links[code] = [(_name(c), c.number, c.hash) for c in closures]
        yield from _chain_problems(
            code, chains.get(code), closures, lambda c: _closure_problem(db, c)
        )
    events = list(db.scalars(select(Event).order_by(Event.number, Event.id), execution_options=fresh))
    links[EVENTS] = [(_name(e), e.number, e.hash) for e in events]
    yield from _chain_problems(EVENTS, chains.get(EVENTS), events, event_problem)
    yield from _unknown(db, chains)
    if key is not None:
        yield from (Broken(*found) for found in seal_problems(db, key, links))
    if anchors is not None:
        yield from (Broken(*found) for found in anchor_problems(db, anchors))


def _unknown(db: Session, chains: Mapping[str, Chain]) -> Iterator[Broken]:
    """What no chain covers: a document of an unknown series or kind, a closure of an unknown kind."""
    for doc in db.scalars(select(Document).where(Document.series.not_in(SERIES))):
        yield Broken(doc.reference, f"series {doc.series!r} is not one of {', '.join(SERIES)}")
    for doc in db.scalars(select(Document).where(Document.series.in_(SERIES))):
        if doc.kind != SERIES[doc.series]:
            yield Broken(doc.reference, f"kind {doc.kind!r} where series {doc.series} holds {SERIES[doc.series]}")
    for closure in db.scalars(select(Closure).where(Closure.kind.not_in(CLOSURE_CHAINS))):
        yield Broken(_name(closure), f"kind {closure.kind!r} is not one of {', '.join(CLOSURE_CHAINS)}")
    for code in sorted(set(chains) - set(SERIES) - set(CLOSURE_CHAINS.values()) - {EVENTS}):
        yield Broken(f"chain {code}", "is not a chain fabmeter keeps")


def _chain_problems(
    code: str, chain: Chain | None, links: list[Any], check: Any
) -> Iterator[Broken]:
    prev, number = GENESIS, 0
    for link in links:
        name = _name(link)
        number += 1
        if link.number != number:
            yield Broken(
                name, f"number {link.number} where {number} was expected (a gap or a duplicate)"
            )
        if link.prev_hash != prev:
            yield Broken(
                name, "does not chain to the link before it (one was removed, added or replaced)"
            )
        if link_hash(link.prev_hash, link.content) != link.hash:
            yield Broken(name, "content altered: its hash no longer matches")
        reason = check(link)
        if reason:
            yield Broken(name, reason)
        prev = link.hash
    if chain is None:
        yield Broken(f"chain {code}", "the chain's head row is missing")
    elif (chain.last_number, chain.last_hash) != (number, prev):
        yield Broken(f"chain {code}", f"the head says {chain.last_number} links, {number} are stored "
                                      "(the last ones were removed or the head was altered)")  # fmt: skip


def _name(link: Document | Closure | Event) -> str:
    if isinstance(link, Document):
        return link.reference
    if isinstance(link, Event):
        return f"event n° {link.number}"
    return f"closure {link.kind} {link.period}"


def _document_problem(db: Session, doc: Document) -> str | None:
    """Whether the columns beside the hashed content still say what the content says."""
    try:
        content = load(doc.content)
    except ValueError:
        return "content is not valid JSON"
    original = db.get(Document, doc.credit_note_of) if doc.credit_note_of is not None else None
    expected = {
        "series": doc.series, "number": doc.number, "kind": doc.kind, "visit": doc.visit_id,
        "customer_ref": doc.customer_ref, "total_cents": doc.total_cents,
        "issued_at": utc_text(doc.issued_at),
        "credit_note_of": original.reference if original is not None else None,
    }  # fmt: skip
    if "issued_by" in content:  # documents issued before it was hashed do not hold it
        expected["issued_by"] = doc.issued_by
    for key, value in expected.items():
        if content.get(key) != value:
            return f"column {key} says {value!r} but the hashed content says {content.get(key)!r}"
    payments = content.get("payments") or {}
    if next(iter(payments), None) != doc.payment_method or sum(payments.values()) != doc.total_cents:
        return f"its payments {payments!r} do not add up to {doc.total_cents} by {doc.payment_method!r}"
    return None


def _closure_problem(db: Session, closure: Closure) -> str | None:
    try:
        content = load(closure.content)
    except ValueError:
        return "content is not valid JSON"
    if (content.get("total_cents"), content.get("grand_total_cents")) != (
        closure.total_cents, closure.grand_total_cents):  # fmt: skip
        return "its total columns differ from its hashed content"
    figures = closure_figures(db, parse_utc(content["start"]), parse_utc(content["end"]))
    for key, value in figures.items():
        if content.get(key) != value:
            return f"{key} recorded {content.get(key)!r}, the documents now give {value!r}"
    return None
