"""Pure pricing: a session's usage and a tariff in, rounded charge lines out. No I/O.

    tariff = TimeTariff(unit_price=Decimal("0.50"), unit_s=60)
    price_session(Usage(session_s=125), tariff)
    # (Line(kind='time', quantity=Decimal('3'), unit='min', amount=Decimal('1.50'), ...),)

Rules: the counted seconds are the tariff's basis (whole session, busy time or job time).
Up to ``grace_s`` seconds cost nothing at all (no start fee, no minimum); beyond, every started
unit is paid, never fewer than ``minimum_units``, plus the start fee. Material is filament
length → grams (cylinder of the material's diameter × density) × price per gram. Each line is
rounded half up to the cent; a total is the sum of the rounded lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from math import ceil

from billing.money import round_cent

PI = Decimal("3.14159265358979323846")
GRAM = Decimal("0.001")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class TimeTariff:
    """Prices of one tariff version, in euros."""

    unit_price: Decimal
    unit_s: int = 60
    minimum_units: int = 0
    start_fee: Decimal = Decimal(0)
    grace_s: int = 0
    basis: str = "session"  # session | busy | job
    material_applies: bool = False
    unit_name: str = "min"


@dataclass(frozen=True)
class MaterialPrice:
    """A filament: diameter (mm), density (g/cm³), euros per gram."""

    name: str
    diameter_mm: Decimal
    density_g_cm3: Decimal
    price_per_gram: Decimal


@dataclass(frozen=True)
class Usage:
    """What a session used: seconds by kind and filament length in millimetres."""

    session_s: int = 0
    busy_s: int = 0
    job_s: int = 0
    filament_mm: Decimal = Decimal(0)


@dataclass(frozen=True)
class Line:
    """A priced line: ``amount`` is rounded to the cent."""

    kind: str  # time | start_fee | material
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal


def counted_seconds(usage: Usage, basis: str) -> int:
    return {"session": usage.session_s, "busy": usage.busy_s, "job": usage.job_s}[basis]


def time_units(seconds: int, tariff: TimeTariff) -> int:
    """Started units to pay; 0 within the grace period (and for nothing at all)."""
    if seconds <= 0 or seconds <= tariff.grace_s:
        return 0
    return max(ceil(seconds / tariff.unit_s), tariff.minimum_units)


def filament_grams(length_mm: Decimal, material: MaterialPrice) -> Decimal:
    """Grams of a filament length, to the milligram: π r² L (mm³) / 1000 × density."""
    radius = material.diameter_mm / 2
    cm3 = PI * radius * radius * length_mm / 1000
    return (cm3 * material.density_g_cm3).quantize(GRAM, ROUND_HALF_UP)


def filament_used_mm(
    *, measured_mm: Decimal | None, estimate_mm: Decimal | None, outcome: str, progress: Decimal | None
) -> Decimal:
    """What a job used: the reported length, else the whole-file estimate prorated by progress."""
    if measured_mm is not None:
        return measured_mm
    if estimate_mm is None:
        return Decimal(0)
    if outcome == "completed":
        return estimate_mm
    return estimate_mm * (progress or Decimal(0)) / HUNDRED


def time_lines(seconds: int, tariff: TimeTariff, what: str) -> list[Line]:
    units = time_units(seconds, tariff)
    if units == 0:
        return []
    lines = [
        Line("time", f"{what} — {_duration(seconds)}", Decimal(units), tariff.unit_name,
             tariff.unit_price, round_cent(tariff.unit_price * units)),
    ]  # fmt: skip
    if tariff.start_fee:
        fee = tariff.start_fee
        lines.insert(0, Line("start_fee", f"{what} — mise en route", Decimal(1), "", fee, round_cent(fee)))
    return lines


def material_line(length_mm: Decimal, material: MaterialPrice) -> Line | None:
    grams = filament_grams(length_mm, material)
    if grams <= 0:
        return None
    amount = round_cent(grams * material.price_per_gram)
    return Line("material", f"{material.name} — {_grams(grams)} g", grams, "g", material.price_per_gram, amount)


def price_session(
    usage: Usage, tariff: TimeTariff, material: MaterialPrice | None = None, what: str = "Machine"
) -> tuple[Line, ...]:
    """The lines of one ended session (also used for the live "cost so far")."""
    lines = time_lines(counted_seconds(usage, tariff.basis), tariff, what)
    if tariff.material_applies and material is not None:
        line = material_line(usage.filament_mm, material)
        if line is not None:
            lines.append(line)
    return tuple(lines)


def total(lines: tuple[Line, ...] | list[Line]) -> Decimal:
    return sum((line.amount for line in lines), Decimal("0.00"))


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d}"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _grams(grams: Decimal) -> str:
    return f"{grams.normalize():f}".replace(".", ",")
