"""Keyed seals and anchors: what holds against someone who has read the code.

    factory = sessionmaker(engine, info={LEDGER_KEY: config.ledger_key})   # the service's sessions
    seal(db, "R", 12, document.hash)      # called by every writer of a document or a closure
    list(seal_problems(db, key))          # what verify adds when the key is at hand
    anchor(path, db, closure)             # one line per closure in a file outside the database

A SHA-256 chain alone is recomputed by anyone who can write the database. Each link therefore
also gets an HMAC-SHA256 of its chain, number and hash, made with a key that lives in a file
under the secrets folder (``ledger_key_file``), never in the database. A key's first use opens a
*segment*, recorded in the ledger with the chain heads at that moment (themselves sealed): links
after those heads must carry a valid seal of that key. A new key starts a new segment; links of
older segments stay checkable by their hash chain only.

Anchors catch what seals cannot: a tail of documents deleted together with its seals and the
chain head rewound. Each closure appends its hash, its digest and every chain head to an
append-only file outside the database (which the backup copies); ``verify`` compares them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from billing.audit import audit
from billing.ledger.documents import CLOSURE_CHAINS, Chain, Closure, Document
from billing.ledger.events import EVENTS, Event
from billing.models import Base, UTCDateTime, utcnow

LEDGER_KEY = "fabmeter.ledger_key"  # the session's info entry holding the key (text), if any


class Segment(Base):
    """The stretch of the ledger sealed by one key: the heads of every chain when it began."""

    __tablename__ = "ledger_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heads: Mapped[str] = mapped_column(Text)  # canonical JSON {chain: number}
    mac: Mapped[str] = mapped_column(String(64))


class Seal(Base):
    """HMAC-SHA256(key, "chain:number:hash") of one link."""

    __tablename__ = "ledger_seals"

    chain: Mapped[str] = mapped_column(String(10), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    mac: Mapped[str] = mapped_column(String(64))


def key_id(key: str) -> str:
    """A short public name of a key (never enough to rebuild it)."""
    return hashlib.sha256(f"fabmeter-ledger-key\n{key}".encode()).hexdigest()[:16]


def _mac(key: str, text: str) -> str:
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def _heads_text(heads: dict[str, int]) -> str:
    return json.dumps(heads, sort_keys=True, separators=(",", ":"))


def segment(db: Session, key: str) -> Segment:
    """The key's segment, opened now (with the chain heads as they stand) at its first use."""
    found = db.scalars(select(Segment).where(Segment.key_id == key_id(key))).first()
    if found is not None:
        return found
    heads = {c.code: c.last_number for c in db.scalars(select(Chain))}
    text = _heads_text(heads)
    opened = Segment(key_id=key_id(key), heads=text, mac=_mac(key, f"segment:{key_id(key)}:{text}"))
    db.add(opened)
    db.flush()
    audit(db, "system", "ledger_key", f"key {opened.key_id}", f"new segment after {text}")
    return opened


def open_segment(db: Session, key: str | None) -> None:
    """At start: record the key's segment before anything is written with it (commits)."""
    if key is None:
        return
    segment(db, key)
    db.commit()


def seal(db: Session, chain: str, number: int, digest: str) -> None:
    """Seal a link just written, when the session holds the ledger key."""
    key = db.info.get(LEDGER_KEY)
    if not key:
        return
    heads = json.loads(segment(db, key).heads)
    if number <= heads.get(chain, 0):  # the segment was opened in this very transaction
        return
    text = f"{chain}:{number}:{digest}"
    db.add(Seal(chain=chain, number=number, hash=digest, key_id=key_id(key), mac=_mac(key, text)))


def seal_problems(
    db: Session, key: str, links: dict[str, list[tuple[str, int, str]]]
) -> Iterator[tuple[str, str]]:
    """(link, reason) for every link of the key's segment whose seal is missing or wrong.

    ``links`` maps a chain code to its stored links as (name, number, hash).
    """
    kid = key_id(key)
    found = db.scalars(select(Segment).where(Segment.key_id == kid)).first()
    if found is None:
        yield ("ledger key", f"no segment of key {kid} in the ledger: it was never used here, "
                             "or its record was removed")  # fmt: skip
        return
    if not hmac.compare_digest(found.mac, _mac(key, f"segment:{kid}:{found.heads}")):
        yield ("ledger key", f"the segment of key {kid} was altered (its chain heads or its seal)")
        return
    heads: dict[str, int] = json.loads(found.heads)
    seals = {(s.chain, s.number): s for s in db.scalars(select(Seal).where(Seal.key_id == kid))}
    stored = set()
    for code, rows in links.items():
        for name, number, digest in rows:
            stored.add((code, number))
            if number <= heads.get(code, 0):
                continue
            got = seals.get((code, number))
            if got is None:
                yield (name, "has no seal: written by someone who does not hold the ledger key")
            elif got.hash != digest or not hmac.compare_digest(
                got.mac, _mac(key, f"{code}:{number}:{digest}")
            ):
                yield (name, "its seal does not match: rewritten without the ledger key")
    for code, number in sorted(set(seals) - stored):
        yield (f"{code} n° {number}", "sealed, but no longer in the ledger (a link was removed)")


# ---------------------------------------------------------------- anchors


def anchor(path: Path, db: Session, closure: Closure) -> dict[str, Any]:
    """Append the closure's hash, digest and every chain head to ``path`` (fsynced)."""
    content = json.loads(closure.content)
    heads = {c.code: [c.last_number, c.last_hash] for c in db.scalars(select(Chain))}
    line = {"closure": f"{closure.kind} {closure.period}", "hash": closure.hash,
            "digest": content.get("digest"), "heads": heads}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, sort_keys=True) + "\n")
        out.flush()
        os.fsync(out.fileno())
    return line


def anchor_problems(db: Session, path: Path) -> Iterator[tuple[str, str]]:
    """(link, reason) for every anchored closure or chain head the database no longer holds."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return
    except OSError as err:
        yield (f"anchors {path}", f"cannot be read: {err.strerror}")
        return
    stored_closures = list(db.scalars(select(Closure)))
    closures = {c.hash for c in stored_closures}
    documents = {(d.series, d.number): d.hash for d in db.scalars(select(Document))}
    closure_links = {(CLOSURE_CHAINS.get(c.kind), c.number): c.hash for c in stored_closures}
    closure_links |= {(EVENTS, e.number): e.hash for e in db.scalars(select(Event))}
    for number, text in enumerate(lines, 1):
        try:
            line = json.loads(text)
            name, digest, heads = line["closure"], line["hash"], line["heads"]
        except (ValueError, KeyError, TypeError):
            yield (f"anchors line {number}", "is not an anchor line")
            continue
        if digest not in closures:
            yield (f"closure {name}", "anchored outside the database but missing or rewritten in it")
        for code, (last, head) in heads.items():
            if last == 0:
                continue
            stored = documents.get((code, last)) or closure_links.get((code, last))
            if stored != head:
                yield (f"{code}-{last:06d}" if len(code) == 1 else f"{code} n° {last}",
                       f"was the head of {code} at the closure of {name}; the database "
                       "no longer holds it as it was (removed or rewritten)")  # fmt: skip
