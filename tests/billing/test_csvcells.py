"""The OWASP CSV-injection rule (https://owasp.org/www-community/attacks/CSV_Injection)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.csvcells import safe_cell, safe_row


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x";"ok")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_that_a_spreadsheet_would_run_is_neutralised(text: str) -> None:
    assert safe_cell(text) == "'" + text


def test_plain_values_and_numbers_stay() -> None:
    assert safe_row(["R-000001", "-12,50", "-3", Decimal("-1.00"), 4, "Découpe laser", ""]) == [
        "R-000001", "-12,50", "-3", Decimal("-1.00"), 4, "Découpe laser", "",
    ]  # fmt: skip
