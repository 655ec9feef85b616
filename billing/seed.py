"""A small French fablab, for the demo and the tests.

    seed(db); db.commit()

Three machines (a laser at 0,50 €/min, a 3D printer at 1 €/h + 0,06 €/g of PLA, a sewing
machine), four categories, two filaments and a few sheets. The repair café may not use the laser.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.models import CatalogueItem, Category, Machine, Material
from billing.tariffs import set_tariff

CATEGORIES = {
    "walk-in": "Visiteur",
    "member": "Adhérent",
    "company": "Entreprise",
    "repair-cafe": "Repair café",
}


@dataclass(frozen=True)
class Price:
    """One tariff row of the seed: category, unit price and how time is counted."""

    category: str
    cents: int
    unit_s: int = 60
    minimum: int = 0
    fee: int = 0
    grace_s: int = 0


MACHINES = {
    "laser-1": ("Découpe laser", "laser", "pi-laser", "busy", False),
    "printer-1": ("Imprimante 3D Prusa", "printer", "pi-printer", "job", True),
    "sewing-1": ("Machine à coudre", "sewing", "pi-sewing", "session", False),
}
PRICES = {
    "laser-1": [Price("walk-in", 50, minimum=5), Price("member", 30), Price("company", 80, minimum=5)],
    "printer-1": [
        Price("walk-in", 25, unit_s=900, grace_s=300),
        Price("member", 25, unit_s=1800, grace_s=300),
        Price("company", 50, unit_s=900, grace_s=300),
        Price("repair-cafe", 0, unit_s=3600),
    ],
    "sewing-1": [
        Price("walk-in", 10, grace_s=300),
        Price("member", 0),
        Price("company", 20, fee=200),
        Price("repair-cafe", 0),
    ],
}
ITEMS = [
    ("plywood-3mm", "Contreplaqué peuplier 3 mm 600×300", "plaque", 450),
    ("plywood-5mm", "Contreplaqué peuplier 5 mm 600×300", "plaque", 600),
    ("mdf-3mm", "MDF 3 mm 600×300", "plaque", 300),
    ("training-laser", "Formation découpe laser", "séance", 1500),
]


def seed(db: Session, *, actor: str = "seed") -> None:
    """Fill an empty ledger; does nothing when machines already exist."""
    if db.scalars(select(Machine)).first() is not None:
        return
    pla = Material(code="pla", name="PLA", diameter_um=1750, density_mg_cm3=1240, price_cents_per_kg=6000)
    petg = Material(code="petg", name="PETG", diameter_um=1750, density_mg_cm3=1270, price_cents_per_kg=7000)
    db.add_all([pla, petg])
    db.add_all(Category(code=code, name=name) for code, name in CATEGORIES.items())
    db.add_all(CatalogueItem(code=c, name=n, unit=u, price_cents=p) for c, n, u, p in ITEMS)
    for machine_id, (name, kind, agent, _basis, _material) in MACHINES.items():
        db.add(Machine(id=machine_id, name=name, kind=kind, agent=agent,
                       material=pla if kind == "printer" else None))  # fmt: skip
    db.flush()
    for machine_id, prices in PRICES.items():
        _name, _kind, _agent, basis, material = MACHINES[machine_id]
        for p in prices:
            set_tariff(
                db, machine_id, p.category, unit_price_cents=p.cents, unit_s=p.unit_s,
                minimum_units=p.minimum, start_fee_cents=p.fee, grace_s=p.grace_s,
                basis=basis, material_applies=material, actor=actor,
            )  # fmt: skip
