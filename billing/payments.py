"""How a visit is paid: one method, or split between two (part card, part cash).

    payments_for(1240, "card")                              # {'card': 1240}
    payments_for(1240, {"card": Decimal("10"), "cash": Decimal("2.40")})   # both, in that order
    payments_for(0, "cash")                                 # {'free': 0}: a free visit
    payments_for(3300, "due")                               # {'due': 3300}: an invoice paid later

The amounts always add up to the total, to the cent; "free" is what a visit of 0,00 € is paid
with (and nothing else is); "due" (à régler) is the whole of an invoice issued unpaid, never a
part of a split. A visit never closes for less than nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from billing.errors import InvalidOperation
from billing.models import PAYMENT_METHODS
from billing.money import euros, format_eur, to_cents

FREE, DUE = "free", "due"
Payment = str | Mapping[str, Decimal]


def _method(method: str) -> str:
    if method not in PAYMENT_METHODS:
        raise InvalidOperation(
            "payment method must be one of %(methods)s, not %(method)r", methods=", ".join(PAYMENT_METHODS),
            method=method,
        )
    return method


def payments_for(total_cents: int, payment: Payment) -> dict[str, int]:
    """The cents paid per method for a visit of ``total_cents``, checked."""
    if total_cents < 0:
        raise InvalidOperation(
            "the total is %(total)s: a visit never costs less than 0,00 €", total=format_eur(euros(total_cents))
        )
    if isinstance(payment, str):
        payment = {_method(payment): euros(total_cents)}
    if total_cents == 0:
        return {FREE: 0}
    paid = {_method(method): to_cents(amount) for method, amount in payment.items()}
    if DUE in paid and len(paid) > 1:
        raise InvalidOperation("an invoice is left to pay as a whole: 'due' cannot be part of a split")
    if FREE in paid:
        raise InvalidOperation(
            "this visit costs %(total)s: it is not free (give a discount with its reason instead)",
            total=format_eur(euros(total_cents)),
        )
    if not paid or any(cents <= 0 for cents in paid.values()):
        raise InvalidOperation("each payment must be more than 0,00 €")
    if sum(paid.values()) != total_cents:
        raise InvalidOperation(
            "the payments add up to %(paid)s, not to the total %(total)s",
            paid=format_eur(euros(sum(paid.values()))), total=format_eur(euros(total_cents)),
        )
    return paid


def split(
    total_cents: int, method: str, second: str | None, second_amount: Decimal | None
) -> Payment:
    """What the desk's close form says: ``method`` pays what ``second`` does not."""
    if not second or second_amount is None:
        return method
    if second == method:
        raise InvalidOperation("a split payment needs two different methods")
    rest = euros(total_cents) - euros(to_cents(second_amount))
    return {method: rest, second: second_amount}


def method_label(payments: Mapping[str, int]) -> str:
    """What a visit's ``payment_method`` column keeps: 'card' or 'card+cash'."""
    return "+".join(payments)
