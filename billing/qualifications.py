"""Who is trained on what: qualifications per machine or group, granted to a person or one visit.

    laser = define(db, "laser", "découpe laser", machines=["laser-1"], actor="admin")
    grant(db, laser.code, customer_id=4, actor="alice", expires_at=None)   # kept across visits
    grant(db, laser.code, visit_id=12, actor="alice")                     # supervised, this visit only
    missing(db, machine, visit, now)          # None, or the Qualification the visit lacks there

A qualification belongs to a person (a customer, found again on a later visit by their own badge)
or, for an anonymous walk-in, to one visit as a supervised session; a loan badge carries none,
it only names the visit. Selling a catalogue item that grants one (``grants_qualification_id``)
grants it to the visit's customer, or for the visit when nobody is named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.errors import InvalidOperation, NotFound
from billing.models import (
    CatalogueItem,
    ChargeLine,
    Customer,
    Machine,
    Qualification,
    QualificationGrant,
    Visit,
    utcnow,
)
from broker.topics import is_id


def refusal_message(qualification: Qualification) -> str:
    """What the machine and the board say ("formation requise : découpe laser")."""
    return f"formation requise : {qualification.name}"


def define(db: Session, code: str, name: str, *, machines: list[str], actor: str) -> Qualification:
    """Create (or rename) a qualification and make ``machines`` need it."""
    if not is_id(code) or len(code) > 40:
        raise InvalidOperation("qualification code %(code)r: use lowercase letters, digits and hyphens", code=code)
    if not name.strip():
        raise InvalidOperation("a qualification needs a name, e.g. « découpe laser »")
    found = db.scalar(select(Qualification).where(Qualification.code == code))
    qualification = found or Qualification(code=code, name=name.strip())
    qualification.name = name.strip()
    db.add(qualification)
    db.flush()
    for machine_id in machines:
        machine = db.get(Machine, machine_id)
        if machine is None:
            raise NotFound("no machine %(machine)s", machine=machine_id)
        machine.qualification_id = qualification.id
    audit(db, actor, "define_qualification", f"qualification {code}", f"{name}: {' '.join(machines)}")
    db.flush()
    return qualification


def by_code(db: Session, code: str) -> Qualification:
    found = db.scalar(select(Qualification).where(Qualification.code == code, Qualification.active))
    if found is None:
        raise NotFound("no qualification %(code)r", code=code)
    return found


def grant(
    db: Session, code: str, *, actor: str, customer_id: int | None = None, visit_id: int | None = None,
    expires_at: datetime | None = None, line: ChargeLine | None = None, now: datetime | None = None,
) -> QualificationGrant:  # fmt: skip
    """Grant a qualification to a customer, or (supervised) to one open visit only."""
    if (customer_id is None) == (visit_id is None):
        raise InvalidOperation("a qualification goes to a customer or to one visit, not both or neither")
    qualification = by_code(db, code)
    if customer_id is not None and db.get(Customer, customer_id) is None:
        raise NotFound("no customer %(customer)s", customer=customer_id)
    if visit_id is not None:
        visit = db.get(Visit, visit_id)
        if visit is None:
            raise NotFound("no visit %(visit)s", visit=visit_id)
        if visit.state == "closed":
            raise InvalidOperation("visit %(visit)s is closed: a supervised session is for a visit now", visit=visit_id)
    row = QualificationGrant(qualification=qualification, customer_id=customer_id, visit_id=visit_id,
                             granted_by=actor, granted_at=now or utcnow(), expires_at=expires_at,
                             line_id=line.id if line is not None else None)  # fmt: skip
    db.add(row)
    whom = f"customer {customer_id}" if customer_id is not None else f"visit {visit_id} (supervised)"
    until = f" until {expires_at.date().isoformat()}" if expires_at else ""
    audit(db, actor, "grant_qualification", whom, f"{code}{until}")
    db.flush()
    return row


def revoke(db: Session, grant_id: int, *, actor: str, now: datetime | None = None) -> QualificationGrant:
    row = db.get(QualificationGrant, grant_id)
    if row is None:
        raise NotFound("no qualification grant %(grant)s", grant=grant_id)
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by = now or utcnow(), actor
        audit(db, actor, "revoke_qualification", f"grant {grant_id}", row.qualification.code)
    return row


def grant_for_sale(db: Session, line: ChargeLine, *, actor: str, now: datetime | None = None) -> QualificationGrant | None:
    """The qualification a sold training grants, to the visit's customer (or for the visit)."""
    item = db.get(CatalogueItem, line.catalogue_item_id) if line.catalogue_item_id is not None else None
    if item is None or item.grants_qualification is None:
        return None
    now = now or utcnow()
    days = item.grants_validity_days
    visit = line.visit
    return grant(db, item.grants_qualification.code, actor=actor, line=line, now=now,
                 customer_id=visit.customer_id, visit_id=None if visit.customer_id else visit.id,
                 expires_at=now + timedelta(days=days) if days else None)  # fmt: skip


def revoke_sold(db: Session, line: ChargeLine, *, actor: str) -> None:
    """Revoke what a sold line granted, before the line goes (the grant stays, revoked, unlinked)."""
    for row in db.scalars(select(QualificationGrant).where(QualificationGrant.line_id == line.id)):
        revoke(db, row.id, actor=actor)
        row.line_id = None
    db.flush()


def _valid(now: datetime) -> object:
    return (QualificationGrant.revoked_at.is_(None)
            & or_(QualificationGrant.expires_at.is_(None), QualificationGrant.expires_at > now))  # fmt: skip


def held(db: Session, visit: Visit, now: datetime | None = None) -> dict[int, datetime | None]:
    """Qualification id → until when this visit's person holds it (None: no expiry)."""
    now = now or utcnow()
    whose = QualificationGrant.visit_id == visit.id
    if visit.customer_id is not None:
        whose = whose | (QualificationGrant.customer_id == visit.customer_id)
    found: dict[int, datetime | None] = {}
    for row in db.scalars(select(QualificationGrant).where(whose, _valid(now))):  # type: ignore[arg-type]
        known = found.get(row.qualification_id, now)
        found[row.qualification_id] = None if row.expires_at is None or known is None else max(known, row.expires_at)
    return found


def missing(db: Session, machine: Machine, visit: Visit, now: datetime | None = None) -> Qualification | None:
    """The qualification ``machine`` needs and the visit's person lacks, or None."""
    if machine.qualification_id is None or machine.qualification is None or not machine.qualification.active:
        return None
    return None if machine.qualification_id in held(db, visit, now) else machine.qualification


@dataclass(frozen=True)
class Holder:
    """One row of "qualified people" on a machine's page."""

    grant_id: int
    who: str
    supervised: bool
    granted_at: datetime
    granted_by: str
    expires_at: datetime | None


def holders(db: Session, qualification_id: int, now: datetime | None = None) -> list[Holder]:
    """Who holds a qualification now: customers, and visits under supervision."""
    query = select(QualificationGrant).where(QualificationGrant.qualification_id == qualification_id, _valid(now or utcnow()))  # type: ignore[arg-type]
    rows = []
    for row in db.scalars(query.order_by(QualificationGrant.granted_at.desc())):
        if row.customer is not None:
            who = row.customer.name or row.customer.company_name or row.customer.ref
        else:
            who = row.visit.label if row.visit is not None else "?"
        rows.append(Holder(row.id, who, row.visit_id is not None, row.granted_at, row.granted_by, row.expires_at))
    return rows
