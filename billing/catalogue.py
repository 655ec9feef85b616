"""Goods sold by the piece at the desk (sheets, a training, a membership) and their lines.

    add_item(db, visit_id, "plywood-3mm", Decimal("2"), actor="alice")   # 2 × 4,50 € = 9,00 €
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.errors import InvalidOperation, NotFound
from billing.models import THOUSAND, CatalogueItem, ChargeLine
from billing.money import to_cents
from billing.qualifications import grant_for_sale
from billing.visits import get_visit


def item_by_code(db: Session, code: str) -> CatalogueItem:
    item = db.scalars(select(CatalogueItem).where(CatalogueItem.code == code)).first()
    if item is None or not item.active:
        raise NotFound("no catalogue item %(code)r for sale", code=code)
    return item


def active_items(db: Session) -> list[CatalogueItem]:
    query = select(CatalogueItem).where(CatalogueItem.active).order_by(CatalogueItem.name)
    return list(db.scalars(query))


def add_item(
    db: Session, visit_id: int, code: str, quantity: Decimal = Decimal(1), *, actor: str,
    now: datetime | None = None,
) -> ChargeLine:  # fmt: skip
    """A line for ``quantity`` (thousandths allowed) of a catalogue item on an open visit."""
    if quantity <= 0 or quantity != quantity.quantize(Decimal("0.001")):
        raise InvalidOperation("quantity must be positive with at most 3 decimals, not %(quantity)s", quantity=quantity)
    visit = get_visit(db, visit_id)
    if visit.state == "closed":
        raise InvalidOperation("visit %(visit)s is closed: items cannot be added", visit=visit_id)
    item = item_by_code(db, code)
    line = ChargeLine(
        visit=visit, kind="item", description=item.name, quantity_milli=int(quantity * THOUSAND),
        unit=item.unit, unit_price_millicents=item.price_cents * 1000,
        amount_cents=to_cents(quantity * item.price), catalogue_item_id=item.id, created_by=actor,
    )  # fmt: skip
    db.add(line)
    audit(db, actor, "add_item", f"visit {visit_id}", f"{quantity} × {code}")
    db.flush()
    grant_for_sale(db, line, actor=actor, now=now)  # a training sold grants its qualification
    return line
