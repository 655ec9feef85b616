"""Money: integer cents in the database, ``Decimal`` euros in code, "12,40 €" for people.

    to_cents(Decimal("0.125"))     # 13 (half up)
    euros(1240)                    # Decimal('12.40')
    format_eur(Decimal("0.5"))     # '0,50 €'
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def euros(cents: int) -> Decimal:
    return (Decimal(cents) / HUNDRED).quantize(CENT)


def round_cent(amount: Decimal) -> Decimal:
    """Half up to the cent: how every line is rounded."""
    return amount.quantize(CENT, ROUND_HALF_UP)


def to_cents(amount: Decimal) -> int:
    return int(round_cent(amount) * HUNDRED)


def format_eur(amount: Decimal, *, places: int = 2) -> str:
    """French notation: comma decimals, space grouping, euro sign after (plain spaces print anywhere)."""
    quantum = Decimal(1).scaleb(-places)
    text = f"{amount.quantize(quantum, ROUND_HALF_UP):,.{places}f}"
    return text.replace(",", " ").replace(".", ",") + " €"
