"""Visits at the desk: check-in, discount, total, what each open visit waits for, close.

    checked = open_visit(db, pepper=cfg.pepper, category="walk-in", actor="alice")
    checked.pin                      # '482913' — show it once, it is not stored
    add_discount(db, checked.visit.id, Decimal("2.00"), "bénévole", actor="alice")
    visit_total(db, checked.visit.id)                    # Decimal('12.40')
    close_visit(db, checked.visit.id, "card", actor="alice"); db.commit()

Every function takes a ``Session`` and never commits: the caller owns the transaction (the
receipt is numbered inside the same one as the close).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.credentials import badge_hash, bind_badge, deactivate_visit_credentials, issue_pin
from billing.customers import invoice_buyer
from billing.errors import InvalidOperation, NotFound
from billing.models import PAYMENT_METHODS, ChargeLine, Customer, UsageSession, Visit, utcnow
from billing.money import euros, format_eur, to_cents
from billing.tariffs import category_by_code

COMPANY = "company"  # the category whose visits close to an invoice


@dataclass(frozen=True)
class CheckIn:
    """A visit just opened, with its PIN in clear (only here, only once)."""

    visit: Visit
    pin: str | None


@dataclass(frozen=True)
class Waiting:
    """A session of the visit still running (a print), and when it should end."""

    session: str
    machine: str
    job: str | None
    ends_at: datetime | None

    def describe(self, tz: tzinfo = UTC) -> str:
        """'waiting for the print, ends 03:40' (in ``tz``, the organisation's zone), for logs."""
        what = "the print" if self.job else f"{self.machine}"
        if self.ends_at is None:
            return f"waiting for {what}"
        ends = self.ends_at.astimezone(tz)
        return f"waiting for {what}, ends {ends:%H:%M}{' UTC' if tz is UTC else ''}"


@dataclass(frozen=True)
class OpenVisit:
    """One row of the desk's list of open visits."""

    id: int
    label: str
    category: str
    state: str
    opened_at: datetime
    total: Decimal
    waiting: tuple[Waiting, ...]
    category_name: str = ""


def get_visit(db: Session, visit_id: int) -> Visit:
    visit = db.get(Visit, visit_id)
    if visit is None:
        raise NotFound("no visit %(visit)s", visit=visit_id)
    return visit


def _open(db: Session, visit_id: int) -> Visit:
    visit = get_visit(db, visit_id)
    if visit.state == "closed":
        raise InvalidOperation("visit %(visit)s is closed: a correction is a new document", visit=visit_id)
    return visit


def open_visit(
    db: Session,
    *,
    pepper: str,
    category: str,
    actor: str,
    name: str | None = None,
    customer_id: int | None = None,
    badge_uid: str | None = None,
    with_pin: bool = True,
    pin_digits: int = 6,
    now: datetime | None = None,
) -> CheckIn:
    """Check a visitor in: anonymous or named, with a PIN (shown once) and/or a badge.

    A badge that is a customer's own (``Customer.badge_hash``) names the visit's customer, whose
    qualifications come with them; any other badge is a loan badge and names nobody. A company's
    visit needs a company customer with all its invoice names (``invoice_buyer``).
    """
    customer = db.get(Customer, customer_id) if customer_id is not None else None
    if customer_id is not None and customer is None:
        raise NotFound("no customer %(customer)s", customer=customer_id)
    if customer is None and badge_uid:
        customer = db.scalar(select(Customer).where(Customer.badge_hash == badge_hash(pepper, badge_uid)))
    if category == COMPANY:
        invoice_buyer(customer)  # its invoice will name the buyer in full: refused now, not at the close
    label = (name or "").strip() or (customer.company_name or customer.name if customer else None)
    visit = Visit(category=category_by_code(db, category), customer=customer, label=label or "…",
                  opened_at=now or utcnow())  # fmt: skip
    db.add(visit)
    db.flush()
    if not label:
        visit.label = f"Visiteur {visit.id}"
    pin = issue_pin(db, pepper, visit, pin_digits) if with_pin else None
    if badge_uid:
        bind_badge(db, pepper, visit, badge_uid)
    audit(db, actor, "open_visit", f"visit {visit.id}", f"category {category}")
    db.flush()
    return CheckIn(visit, pin)


def set_customer(db: Session, visit_id: int, customer_id: int | None, *, actor: str) -> Visit:
    """Bill an open visit to another customer (or none); a company's visit needs a complete company."""
    visit = _open(db, visit_id)
    customer = db.get(Customer, customer_id) if customer_id is not None else None
    if customer_id is not None and (customer is None or customer.erased_at is not None):
        raise NotFound("no customer %(customer)s", customer=customer_id)
    if visit.category.code == COMPANY:
        invoice_buyer(customer, visit_id)
    previous = visit.customer
    named_after = (previous.company_name, previous.name) if previous is not None else ()
    if visit.label in named_after or visit.label == f"Visiteur {visit.id}":  # not a name typed at check-in
        visit.label = (customer.company_name or customer.name if customer else None) or f"Visiteur {visit.id}"
    visit.customer = customer
    audit(db, actor, "set_customer", f"visit {visit_id}", customer.ref if customer else "no customer")
    db.flush()
    return visit


def add_discount(db: Session, visit_id: int, amount: Decimal, reason: str, *, actor: str) -> ChargeLine:
    """A discount of ``amount`` euros (positive), as a negative line whose text is the reason.

    It is at most the visit's total so far: a visit never costs less than nothing.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidOperation("a discount needs a reason")
    if amount <= 0:
        raise InvalidOperation("a discount must be more than 0,00 €, not %(amount)s", amount=amount)
    visit = _open(db, visit_id)
    cents = to_cents(amount)
    before = to_cents(visit_total(db, visit_id))
    if cents > before:
        raise InvalidOperation(
            "a discount of %(amount)s is more than the visit's total (%(total)s): a visit never costs less than 0,00 €",
            amount=format_eur(euros(cents)), total=format_eur(euros(before)),
        )
    line = ChargeLine(
        visit=visit, kind="discount", description=f"Remise : {reason}", quantity_milli=1000,
        unit="", unit_price_millicents=-cents * 1000, amount_cents=-cents, created_by=actor,
    )  # fmt: skip
    db.add(line)
    audit(db, actor, "discount", f"visit {visit_id}", f"-{format_eur(euros(cents))}: {reason}")
    db.flush()
    return line


def visit_total(db: Session, visit_id: int) -> Decimal:
    """The sum of the visit's rounded lines (discounts included)."""
    cents = db.scalar(select(func.coalesce(func.sum(ChargeLine.amount_cents), 0)).where(
        ChargeLine.visit_id == visit_id
    ))  # fmt: skip
    return euros(int(cents or 0))


def waiting_for(db: Session, visit_id: int) -> tuple[Waiting, ...]:
    query = select(UsageSession).where(
        UsageSession.visit_id == visit_id, UsageSession.state == "open"
    ).order_by(UsageSession.started_at)  # fmt: skip
    return tuple(
        Waiting(s.id, s.machine_id, s.job, s.expected_end_at) for s in db.scalars(query)
    )


def list_open_visits(db: Session) -> list[OpenVisit]:
    """Visits not closed yet, oldest first, each with its total and what it waits for."""
    visits = db.scalars(select(Visit).where(Visit.state != "closed").order_by(Visit.opened_at))
    return [
        OpenVisit(
            id=v.id, label=v.label, category=v.category.code, state=v.state,
            opened_at=v.opened_at, total=visit_total(db, v.id), waiting=waiting_for(db, v.id),
            category_name=v.category.name,
        )  # fmt: skip
        for v in visits
    ]


def mark_waiting(db: Session, visit_id: int, *, actor: str) -> Visit:
    """The visitor leaves while a print runs: keep the visit until pickup."""
    visit = _open(db, visit_id)
    if not waiting_for(db, visit_id):
        raise InvalidOperation("visit %(visit)s has nothing running: close it instead", visit=visit_id)
    visit.state = "waiting"
    audit(db, actor, "mark_waiting", f"visit {visit_id}")
    return visit


def closable(db: Session, visit_id: int, tz: tzinfo = UTC) -> tuple[bool, str]:
    """Whether the visit can be closed now, and if not, why (for the desk, times in ``tz``)."""
    visit = get_visit(db, visit_id)
    if visit.state == "closed":
        return False, f"visit {visit_id} is already closed"
    running = waiting_for(db, visit_id)
    if running:
        return False, "; ".join(w.describe(tz) for w in running)
    return True, ""


def close_visit(
    db: Session, visit_id: int, payment_method: str, *, actor: str, now: datetime | None = None
) -> Visit:
    """Close a visit: payment method, closed time, its badge and PIN stop working.

    Refused while one of its sessions still runs (mark it waiting instead). It does not
    commit: the receipt is numbered by the caller in the same transaction.
    """
    if payment_method not in PAYMENT_METHODS:
        raise InvalidOperation("payment method must be one of %(methods)s", methods=", ".join(PAYMENT_METHODS))
    ok, why = closable(db, visit_id)
    if not ok:
        raise InvalidOperation("visit %(visit)s cannot be closed: %(why)s", visit=visit_id, why=why)
    visit = get_visit(db, visit_id)
    visit.state = "closed"
    visit.closed_at = now or utcnow()
    visit.payment_method = payment_method
    deactivate_visit_credentials(visit)
    audit(db, actor, "close_visit", f"visit {visit_id}", f"{visit_total(db, visit_id)} {payment_method}")
    db.flush()
    return visit
