from __future__ import annotations

from decimal import Decimal

import pytest

from billing.pricing import (
    MaterialPrice,
    TimeTariff,
    Usage,
    filament_grams,
    filament_used_mm,
    price_session,
    total,
)

D = Decimal
PER_15_MIN = TimeTariff(unit_price=D("1.50"), unit_s=900, grace_s=60, unit_name="15 min")
LASER = TimeTariff(unit_price=D("0.50"), unit_s=60, minimum_units=5, start_fee=D("2.00"), basis="busy")
PLA = MaterialPrice("PLA", diameter_mm=D("1.75"), density_g_cm3=D("1.24"), price_per_gram=D("0.06"))
PRINTER = TimeTariff(unit_price=D("0.25"), unit_s=900, grace_s=300, basis="job", material_applies=True)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0.00"),  # nothing used
        (59, "0.00"),  # inside the grace period
        (60, "0.00"),  # the grace period's last second is still free
        (61, "1.50"),  # one started unit
        (900, "1.50"),  # exactly one unit
        (901, "3.00"),  # the next unit has started
        (3600, "6.00"),
    ],
)
def test_time_charge_counts_started_units_after_grace(seconds: int, expected: str) -> None:
    assert total(price_session(Usage(session_s=seconds), PER_15_MIN)) == D(expected)


@pytest.mark.parametrize(
    ("busy_s", "expected"),
    [
        (0, "0.00"),  # the laser never fired: no start fee either
        (1, "4.50"),  # 2,00 fee + minimum 5 min
        (300, "4.50"),
        (301, "5.00"),  # 6 started minutes
    ],
)
def test_minimum_units_and_start_fee_count_busy_time(busy_s: int, expected: str) -> None:
    lines = price_session(Usage(session_s=busy_s + 600, busy_s=busy_s), LASER, what="Laser")
    assert total(lines) == D(expected)


def test_basis_selects_which_seconds_count() -> None:
    usage = Usage(session_s=7200, busy_s=3000, job_s=1000)
    job = TimeTariff(unit_price=D("1"), unit_s=1000, basis="job")
    assert total(price_session(usage, job)) == D("1.00")


def test_filament_length_becomes_grams() -> None:
    # 1 m of 1.75 mm PLA: π × 0.875² × 1000 mm³ = 2.40528 cm³ × 1.24 = 2.98255 g → 2.983
    assert filament_grams(D("1000"), PLA) == D("2.983")
    assert filament_grams(D("0"), PLA) == D("0.000")


@pytest.mark.parametrize(
    ("length_mm", "material_amount"),
    [
        (D("1000"), "0.18"),  # 2.983 g × 0,06 = 0,17898 → 0,18
        (D("838.5"), "0.15"),  # 2.501 g × 0,06 = 0,15006
        (D("4192.2"), "0.75"),  # 12.503 g × 0,06 = 0,75018
    ],
)
def test_material_line_is_rounded_half_up(length_mm: Decimal, material_amount: str) -> None:
    [time, material] = price_session(Usage(job_s=1800, filament_mm=length_mm), PRINTER, PLA, "Prusa")
    assert time.amount == D("0.50")
    assert material.amount == D(material_amount) and material.unit == "g"


def test_half_cent_rounds_up() -> None:
    half = TimeTariff(unit_price=D("0.125"), unit_s=60)
    assert total(price_session(Usage(session_s=60), half)) == D("0.13")  # half-even would say 0,12
    assert total(price_session(Usage(session_s=180), half)) == D("0.38")  # 0,375


def test_total_is_the_sum_of_rounded_lines() -> None:
    cheap = MaterialPrice("PLA", D("1.75"), D("1.24"), D("0.025"))
    tariff = TimeTariff(unit_price=D("0.005"), unit_s=60, material_applies=True)
    lines = price_session(Usage(session_s=60, filament_mm=D("1000")), tariff, cheap)
    # 0,005 → 0,01 ; 2.983 g × 0,025 = 0,074575 → 0,07 ; sum of rounded = 0,08 (not round(0,07955))
    assert [line.amount for line in lines] == [D("0.01"), D("0.07")]
    assert total(lines) == D("0.08")


def test_cancelled_print_pays_filament_pro_rata() -> None:
    used = filament_used_mm(measured_mm=None, estimate_mm=D("10000"), outcome="cancelled", progress=D("42.5"))
    assert used == D("4250")
    lines = price_session(Usage(job_s=2700, filament_mm=used), PRINTER, PLA, "Prusa")
    # 4250 mm → 12.676 g × 0,06 = 0,76056 → 0,76 ; 45 min = 3 quarters → 0,75
    assert [line.amount for line in lines] == [D("0.75"), D("0.76")]


def test_reported_filament_wins_over_the_estimate() -> None:
    assert filament_used_mm(measured_mm=D("123"), estimate_mm=D("9999"), outcome="failed", progress=D("10")) == D("123")
    assert filament_used_mm(measured_mm=None, estimate_mm=D("900"), outcome="completed", progress=None) == D("900")
    assert filament_used_mm(measured_mm=None, estimate_mm=None, outcome="completed", progress=None) == 0


def test_a_print_in_the_grace_period_pays_only_its_material() -> None:
    lines = price_session(Usage(job_s=120, filament_mm=D("1000")), PRINTER, PLA, "Prusa")
    assert [line.kind for line in lines] == ["material"]
