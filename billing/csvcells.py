"""CSV cells a spreadsheet will not run: the OWASP rule against CSV (formula) injection.

    safe_cell("=HYPERLINK(\"http://x\")")  # "'=HYPERLINK(\"http://x\")"
    safe_cell("-12,50")                    # "-12,50": a plain number stays a number
    safe_row(["R-000001", Decimal("-1.00"), "@SUM(A1)"])

A text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
leading ``'`` (https://owasp.org/www-community/attacks/CSV_Injection). Numbers written by the
exports themselves (``-12,50``, a credit note's amount) are left as they are, so the accountant's
sums still work; anything else a person typed is neutralised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+([.,]\d+)?")


def safe_cell(value: object) -> object:
    if not isinstance(value, str) or not value.startswith(TRIGGERS) or _NUMBER.fullmatch(value):
        return value
    return "'" + value


def safe_row(row: Iterable[object]) -> list[object]:
    return [safe_cell(value) for value in row]
