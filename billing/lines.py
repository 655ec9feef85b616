"""Taking back a mistake on an open visit: a line removed, or its quantity reduced, with a reason.

    remove_line(db, line_id, "saisi deux fois", actor="alice")
    reduce_line(db, line_id, Decimal("2"), "une plaque rendue", actor="alice")   # 3 → 2 plates

Only while the visit is open: after the close the receipt is a validated document and the
correction is a credit note (``billing.ledger.receipts.issue_credit_note``). Each change leaves an
audit entry naming the line as it was, what it became and why. The visit's total never goes
below zero: a line that a discount covers cannot go before the discount does.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.errors import InvalidOperation, NotFound
from billing.models import THOUSAND, AuditEntry, ChargeLine
from billing.money import euros, format_eur, to_cents
from billing.qualifications import revoke_sold
from billing.visits import get_visit, visit_total

CORRECTIONS = ("remove_line", "reduce_line")


def _open_line(db: Session, line_id: int, reason: str) -> tuple[ChargeLine, str]:
    reason = reason.strip()
    if not reason:
        raise InvalidOperation("a correction needs a reason")
    line = db.get(ChargeLine, line_id)
    if line is None:
        raise NotFound("no line %(line)s", line=line_id)
    if get_visit(db, line.visit_id).state == "closed":
        raise InvalidOperation(
            "visit %(visit)s is closed: a correction is a credit note on its receipt", visit=line.visit_id
        )
    return line, reason


def _describe(line: ChargeLine) -> str:
    unit = f" {line.unit}" if line.unit else ""
    return f"{line.description} ({line.quantity.normalize():f}{unit}, {format_eur(line.amount)})"


def _never_below_zero(db: Session, visit_id: int, change_cents: int) -> None:
    total = to_cents(visit_total(db, visit_id))
    if total + change_cents < 0:
        raise InvalidOperation(
            "the visit's total would be %(total)s: reduce or remove its discount first",
            total=format_eur(euros(total + change_cents)),
        )


def remove_line(db: Session, line_id: int, reason: str, *, actor: str) -> None:
    """Delete a line of an open visit (its audit entry keeps what it was)."""
    line, reason = _open_line(db, line_id, reason)
    _never_below_zero(db, line.visit_id, -line.amount_cents)
    audit(db, actor, "remove_line", f"visit {line.visit_id}", f"{_describe(line)}: {reason}")
    revoke_sold(db, line, actor=actor)  # a training taken back is no longer granted
    db.delete(line)
    db.flush()


def reduce_line(
    db: Session, line_id: int, quantity: Decimal, reason: str, *, actor: str
) -> ChargeLine:
    """Lower a line's quantity (3 plates → 2); its amount is the new quantity × its unit price."""
    line, reason = _open_line(db, line_id, reason)
    if line.kind == "discount":
        raise InvalidOperation("a discount is removed, not reduced: remove it and give a new one")
    if (
        quantity <= 0
        or quantity >= line.quantity
        or quantity != quantity.quantize(Decimal("0.001"))
    ):
        raise InvalidOperation(
            "the new quantity must be more than 0 and less than %(most)s, "
            "with at most 3 decimals (remove the line to take all of it back)",
            most=format(line.quantity.normalize(), "f"),
        )
    amount_cents = to_cents(quantity * line.unit_price)
    _never_below_zero(db, line.visit_id, amount_cents - line.amount_cents)
    before = _describe(line)
    line.quantity_milli = int(quantity * THOUSAND)
    line.amount_cents = amount_cents
    audit(
        db,
        actor,
        "reduce_line",
        f"visit {line.visit_id}",
        f"{before} → {_describe(line)}: {reason}",
    )
    db.flush()
    return line


def corrections(db: Session, visit_id: int) -> list[AuditEntry]:
    """The lines taken back on a visit, oldest first (for its page)."""
    query = select(AuditEntry).where(
        AuditEntry.subject == f"visit {visit_id}", AuditEntry.action.in_(CORRECTIONS)
    )  # fmt: skip
    return list(db.scalars(query.order_by(AuditEntry.id)))
