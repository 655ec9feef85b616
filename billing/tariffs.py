"""Tariffs per machine × category, versioned: an edit adds a version, a version never changes.

    v = set_tariff(db, "laser-1", "walk-in", unit_price_cents=50, unit_s=60, actor="alice")
    current_version(db, "laser-1", category_id)     # the latest version, or None (not allowed)
    price_summary(v, material)                      # '0,50 €/min + 0,06 €/g PLA'
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import event, func, select
from sqlalchemy.orm import Mapper, Session

from billing.audit import audit
from billing.errors import InvalidOperation, NotFound
from billing.models import TIME_BASES, Category, Machine, Material, Tariff, TariffVersion
from billing.money import euros, format_eur

UNIT_NAMES = {1: "s", 60: "min", 3600: "h", 86400: "jour"}


@event.listens_for(TariffVersion, "before_update")
def _versions_are_immutable(_mapper: Mapper[TariffVersion], _conn: object, target: TariffVersion) -> None:
    raise InvalidOperation("tariff version %(version)s is immutable: add a new version with set_tariff()", version=target.id)


def category_by_code(db: Session, code: str) -> Category:
    category = db.scalars(select(Category).where(Category.code == code)).first()
    if category is None:
        raise NotFound("no customer category %(code)r", code=code)
    return category


def current_version(db: Session, machine_id: str, category_id: int) -> TariffVersion | None:
    """The prices a category pays on a machine now; None means the machine is not allowed."""
    query = (
        select(TariffVersion)
        .join(Tariff)
        .where(Tariff.machine_id == machine_id, Tariff.category_id == category_id, Tariff.active)
        .order_by(TariffVersion.version.desc())
    )
    return db.scalars(query).first()


def set_tariff(
    db: Session,
    machine_id: str,
    category_code: str,
    *,
    unit_price_cents: int,
    unit_s: int = 60,
    minimum_units: int = 0,
    start_fee_cents: int = 0,
    grace_s: int = 0,
    basis: str = "session",
    material_applies: bool = False,
    actor: str = "system",
) -> TariffVersion:
    """Add a new current version of the tariff (creating the tariff on first use)."""
    _check_tariff(unit_price_cents, unit_s, minimum_units, start_fee_cents, grace_s, basis)
    if db.get(Machine, machine_id) is None:
        raise NotFound("no machine %(machine)r", machine=machine_id)
    category = category_by_code(db, category_code)
    tariff = db.scalars(
        select(Tariff).where(Tariff.machine_id == machine_id, Tariff.category_id == category.id)
    ).first()
    if tariff is None:
        tariff = Tariff(machine_id=machine_id, category_id=category.id)
        db.add(tariff)
        db.flush()
    tariff.active = True
    latest = db.scalar(select(func.max(TariffVersion.version)).where(TariffVersion.tariff_id == tariff.id))
    version = TariffVersion(
        tariff=tariff, version=(latest or 0) + 1, unit_price_cents=unit_price_cents, unit_s=unit_s,
        minimum_units=minimum_units, start_fee_cents=start_fee_cents, grace_s=grace_s,
        basis=basis, material_applies=material_applies, created_by=actor,
    )  # fmt: skip
    db.add(version)
    db.flush()
    audit(db, actor, "set_tariff", f"{machine_id}/{category_code}", f"version {version.version}")
    return version


def _check_tariff(price: int, unit_s: int, minimum: int, fee: int, grace: int, basis: str) -> None:
    if basis not in TIME_BASES:
        raise InvalidOperation("basis must be one of %(bases)s, not %(basis)r", bases=", ".join(TIME_BASES), basis=basis)
    if unit_s < 1:
        raise InvalidOperation("the time unit must be at least 1 second")
    if min(price, minimum, fee, grace) < 0:
        raise InvalidOperation("prices, minimum units and grace period cannot be negative")


def unit_name(unit_s: int) -> str:
    if unit_s in UNIT_NAMES:
        return UNIT_NAMES[unit_s]
    if unit_s % 60 == 0:
        return f"{unit_s // 60} min"
    return f"{unit_s} s"


def price_summary(version: TariffVersion, material: Material | None = None) -> str:
    """What the machine shows: '0,50 €/min + 0,06 €/g PLA', with a start fee if any."""
    parts = [f"{format_eur(euros(version.unit_price_cents))}/{unit_name(version.unit_s)}"]
    if version.start_fee_cents:
        parts.insert(0, f"{format_eur(euros(version.start_fee_cents))}")
    if version.material_applies and material is not None:
        per_gram = material.price_per_gram
        places = 2 if per_gram == per_gram.quantize(Decimal("0.01")) else 3
        parts.append(f"{format_eur(per_gram, places=places)}/g {material.name}")
    return " + ".join(parts)
