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


# every space a French keyboard, a spreadsheet or Babel puts between thousands
_GROUPING_SPACES = (" ", "\u00a0", "\u202f", "\u2009")


def parse_decimal(text: str, *, places: int) -> Decimal:
    """A number as a French user types it: '1,50', '1 234,50', '2,5'; a dot works as the comma.

    Raises ``ValueError`` with a message for people ('1.234,5' mixes both separators).
    """
    raw = text.strip()
    for space in _GROUPING_SPACES:
        raw = raw.replace(space, " ")
    if "," in raw and "." in raw:
        raise ValueError("use a comma for the decimals and no dot (1 234,50)")
    whole, _, fraction = raw.replace(",", ".").partition(".")
    groups = whole.lstrip("-").split(" ")
    if len(groups) > 1 and (not 1 <= len(groups[0]) <= 3 or any(len(g) != 3 for g in groups[1:])):
        raise ValueError("spaces go between groups of three digits (1 234,50)")
    digits = whole.replace(" ", "")
    if not digits.lstrip("-").isdigit() or (fraction and not fraction.isdigit()) or not raw:
        raise ValueError("not a number")
    if len(fraction) > places:
        raise ValueError(f"at most {places} decimals")
    return Decimal(f"{digits}.{fraction or '0'}")


def decimal_text(value: Decimal, *, places: int | None = None) -> str:
    """'1 234,5' — a number written back in French (no trailing zeros unless ``places``)."""
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
        text = f"{value:,.{places}f}"
    else:
        value = value.normalize()
        whole, _, fraction = f"{value:f}".partition(".")
        text = f"{int(whole):,}" + (f".{fraction}" if fraction else "")
        if whole.startswith("-") and int(whole) == 0:
            text = "-" + text
    return text.replace(",", " ").replace(".", ",")
