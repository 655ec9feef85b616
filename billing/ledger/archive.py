"""The signed yearly archive: one JSON file that can be checked years later without the database.

    data = build(db, 2026, tz=PARIS)                    # documents, closures, events, chain heads
    text = sign(data, private_pem)                      # + Ed25519 signature and public key
    archive_problems(json.loads(text), fingerprint="…") # [] when it holds

The archive holds every document issued in the fiscal year (its lines are in its hashed
``content``), every closure of a period of that year, every event of the year, and for each
chain the link before the year's first and the last one. ``archive_problems`` checks the
signature (and, given one, the public key's fingerprint kept apart), every hash chain inside,
and recomputes each closure's figures from the archived documents.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import tzinfo
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.errors import InvalidOperation
from billing.ledger.chain import canonical, link_hash, load, parse_utc, utc_text, year_period
from billing.ledger.documents import Closure, Document
from billing.ledger.events import Event


def _link(row: Document | Closure | Event, chain: str) -> dict[str, Any]:
    return {"chain": chain, "number": row.number, "content": row.content, "prev_hash": row.prev_hash,
            "hash": row.hash}  # fmt: skip


def build(db: Session, year: int, *, tz: tzinfo) -> dict[str, Any]:
    """What the archive of ``year`` holds, before it is signed."""
    from billing.ledger.documents import CLOSURE_CHAINS
    from billing.ledger.events import EVENTS

    period = year_period(year, tz)
    documents = db.scalars(select(Document).where(Document.issued_at >= period.start,
                                                  Document.issued_at < period.end)
                           .order_by(Document.id))  # fmt: skip  (the closures digest them in this order)
    closures = db.scalars(select(Closure).where(Closure.period.startswith(f"{year:04d}"))
                          .order_by(Closure.kind, Closure.number))  # fmt: skip
    events = db.scalars(select(Event).where(Event.at >= period.start, Event.at < period.end).order_by(Event.number))
    opening = db.scalar(select(func.coalesce(func.sum(Document.total_cents), 0))
                        .where(Document.issued_at < period.start))  # fmt: skip
    return {
        "v": 1, "year": year, "start": utc_text(period.start), "end": utc_text(period.end),
        "opening_grand_total_cents": int(opening or 0),
        "documents": [_link(d, d.series) for d in documents],
        "closures": [_link(c, CLOSURE_CHAINS.get(c.kind, c.kind)) for c in closures],
        "events": [_link(e, EVENTS) for e in events],
    }  # fmt: skip


def load_private_key(pem: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except ValueError as err:
        raise InvalidOperation("the archive key is not a PEM private key: %(err)s", err=str(err)) from err
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidOperation("the archive key must be an Ed25519 key (openssl genpkey -algorithm ed25519)")
    return key


def fingerprint(public_raw: bytes) -> str:
    """The public key's name to keep apart (on paper): SHA-256, first 32 hex digits."""
    return hashlib.sha256(public_raw).hexdigest()[:32]


def sign(data: dict[str, Any], private_pem: str) -> str:
    """The archive file's text: the data, its Ed25519 signature and the public key."""
    key = load_private_key(private_pem)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signature = key.sign(canonical(data).encode())
    return canonical({"archive": data, "signature": base64.b64encode(signature).decode(),
                      "public_key": base64.b64encode(public).decode(),
                      "fingerprint": fingerprint(public)}) + "\n"  # fmt: skip


def archive_problems(file: Any, *, expected: str | None = None) -> list[str]:
    """Everything that does not hold in a parsed archive file; empty when it is intact."""
    try:
        data, signature = file["archive"], base64.b64decode(file["signature"])
        public = base64.b64decode(file["public_key"])
    except (KeyError, TypeError, ValueError):
        return ["not a fabmeter archive: archive, signature or public_key missing"]
    found = []
    if expected is not None and fingerprint(public).lower() != expected.strip().lower():
        found.append(f"signed by key {fingerprint(public)}, not by {expected}: re-signed by someone else")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, canonical(data).encode())
    except (InvalidSignature, ValueError):
        return [*found, "the signature does not match: the archive was changed after it was signed"]
    try:
        found += list(_chain_problems(data))
        found += list(_closure_problems(data))
    except (KeyError, TypeError, ValueError) as err:
        found.append(f"the archive's content is malformed: {err!r}")
    return found


def _chain_problems(data: dict[str, Any]) -> Iterator[str]:
    chains: dict[str, list[dict[str, Any]]] = {}
    for link in [*data["documents"], *data["closures"], *data["events"]]:
        chains.setdefault(link["chain"], []).append(link)
    for code, links in sorted(chains.items()):
        links.sort(key=lambda link: link["number"])
        prev, number = links[0]["prev_hash"], links[0]["number"]
        for link in links:
            name = f"{code} n° {link['number']}"
            if link["number"] != number:
                yield f"{name}: number {link['number']} where {number} was expected (one is missing)"
            if link["prev_hash"] != prev:
                yield f"{name}: does not chain to the link before it"
            if link_hash(link["prev_hash"], link["content"]) != link["hash"]:
                yield f"{name}: content altered: its hash no longer matches"
            prev, number = link["hash"], link["number"] + 1


def _closure_problems(data: dict[str, Any]) -> Iterator[str]:
    documents = [(parse_utc(load(d["content"])["issued_at"]), d) for d in data["documents"]]
    for link in data["closures"]:
        content = load(link["content"])
        start, end = parse_utc(content["start"]), parse_utc(content["end"])
        inside = [d for at, d in documents if start <= at < end]
        totals: dict[str, int] = {}
        for doc in inside:
            for method, cents in load(doc["content"])["payments"].items():
                totals[method] = totals.get(method, 0) + cents
        before = sum(load(d["content"])["total_cents"] for at, d in documents if at < end)
        figures = {"documents": len(inside), "totals": totals, "total_cents": sum(totals.values()),
                   "digest": hashlib.sha256("\n".join(d["hash"] for d in inside).encode()).hexdigest(),
                   "grand_total_cents": data["opening_grand_total_cents"] + before}  # fmt: skip
        for key, value in figures.items():
            if content.get(key) != value:
                yield (f"closure {content['kind']} {content['period']}: {key} recorded "
                       f"{content.get(key)!r}, the archived documents give {value!r}")  # fmt: skip
