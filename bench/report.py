"""Report benchmark: a month's reports over one year of synthetic data, and again with twice the data.

    .venv/bin/python bench/report.py [--sessions 100000] [--machines 20] [--quick]

Fills a SQLite ledger with a year of closed visits (about two sessions each, a time line and,
for printers, a material line per session) spread evenly over 20 machines, then times what the
reports page runs for one month: takings by machine, by category and by payment method,
utilisation, material used, and the accountant's CSV lines. Then it doubles the history (a
second year beside the first: the month's report should not notice) and then the year's
activity (the month has twice the rows). Prints one ``name: value`` per line.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from billing import reports  # noqa: E402
from billing.database import make_engine, upgrade  # noqa: E402
from billing.models import Category, ChargeLine, Machine, Material, UsageSession, Visit  # noqa: E402
from billing.seed import seed  # noqa: E402

TZ = ZoneInfo("Europe/Paris")
YEAR = 2025
METHODS = ("card", "cash", "transfer")


def add_machines(db: Session, count: int) -> list[str]:
    existing = list(db.scalars(select(Machine.id)))
    for n in range(len(existing), count):
        db.add(Machine(id=f"machine-{n}", name=f"Machine {n}", kind="printer" if n % 2 else "laser",
                       agent=f"pi-{n}"))  # fmt: skip
    db.flush()
    return list(db.scalars(select(Machine.id).order_by(Machine.id)))[:count]


def fill(db: Session, sessions: int, machines: list[str], rng: random.Random, year: int = YEAR) -> None:
    """``sessions`` sessions in closed visits over the year, inserted in bulk."""
    categories = list(db.scalars(select(Category.id)))
    pla = db.scalar(select(Material.id).where(Material.code == "pla"))
    start = datetime(year, 1, 1, 8, tzinfo=UTC)
    visits, rows, lines = [], [], []
    first_visit = (db.scalar(select(Visit.id).order_by(Visit.id.desc()).limit(1)) or 0) + 1
    for i in range(sessions):
        visit_id = first_visit + i // 2
        at = start + timedelta(seconds=rng.randrange(365 * 86400))
        if i % 2 == 0:
            visits.append({"id": visit_id, "state": "closed", "category_id": rng.choice(categories),
                           "label": f"Visiteur {visit_id}", "opened_at": at,
                           "closed_at": at + timedelta(hours=2), "payment_method": rng.choice(METHODS)})  # fmt: skip
        machine = machines[i % len(machines)]
        busy = rng.randrange(300, 7200)
        session_id = str(uuid.UUID(int=rng.getrandbits(128)))
        rows.append({"id": session_id, "agent": "pi-x", "machine_id": machine, "visit_id": visit_id,
                     "auth": "online", "state": "priced", "started_at": at, "ended_at": at + timedelta(seconds=busy),
                     "session_s": busy + 60, "busy_s": busy, "job_s": busy, "filament_mm_milli": 0})  # fmt: skip
        lines.append(_line(visit_id, session_id, "time", busy // 60, "min", 50_000, None, at))
        if machine.endswith(("1", "3", "5", "7", "9")):
            lines.append(_line(visit_id, session_id, "material", rng.randrange(5, 200), "g", 6_000, pla, at))
    for table, data in ((Visit, visits), (UsageSession, rows), (ChargeLine, lines)):
        for chunk in range(0, len(data), 5000):
            db.execute(insert(table), data[chunk : chunk + 5000])


def _line(visit: int, session: str, kind: str, quantity: int, unit: str, unit_millicents: int,
          material: int | None, at: datetime) -> dict[str, Any]:  # fmt: skip
    return {"visit_id": visit, "session_id": session, "kind": kind, "description": kind,
            "quantity_milli": quantity * 1000, "unit": unit, "unit_price_millicents": unit_millicents,
            "amount_cents": quantity * unit_millicents // 1000, "material_id": material,
            "created_at": at}  # fmt: skip


def time_month(factory: sessionmaker[Session]) -> dict[str, float]:
    period = reports.Period.month(YEAR, 6, TZ)
    timings: dict[str, float] = {}
    calls = {
        "takings_by_machine": lambda db: reports.takings(db, period, by="machine"),
        "takings_by_category": lambda db: reports.takings(db, period, by="category"),
        "takings_by_payment": lambda db: reports.takings(db, period, by="payment", step="month"),
        "utilisation": lambda db: reports.utilisation(db, period),
        "materials": lambda db: reports.materials_used(db, period),
        "csv_lines": lambda db: reports.export_lines(db, period),
    }
    for name, call in calls.items():
        with factory() as db:
            started = time.perf_counter()
            result = call(db)
            timings[name] = time.perf_counter() - started
            assert result, f"{name} found nothing: the synthetic data are wrong"
    timings["month_report"] = sum(timings.values())
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="10,000 sessions")
    args = parser.parse_args()
    sessions = 10_000 if args.quick else args.sessions
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/report.db"
        upgrade(url)
        factory = sessionmaker(make_engine(url), expire_on_commit=False)
        with factory.begin() as db:
            seed(db)
            machines = add_machines(db, args.machines)
        started = time.perf_counter()
        with factory.begin() as db:
            fill(db, sessions, machines, rng)
        print(f"sessions: {sessions}")
        print(f"fill_s: {time.perf_counter() - started:.1f}")
        base = time_month(factory)
        for name, seconds in base.items():
            print(f"{name}_ms: {seconds * 1000:.0f}")
        # another year beside it: the month's report should not notice
        with factory.begin() as db:
            fill(db, sessions, machines, rng, year=YEAR + 1)
        other_year = time_month(factory)
        print(f"month_report_two_years_ms: {other_year['month_report'] * 1000:.0f}")
        print(f"growth_when_history_doubles: {other_year['month_report'] / base['month_report']:.2f}")
        # twice as busy a year: the month has twice the rows
        with factory.begin() as db:
            fill(db, sessions, machines, rng)
        doubled = time_month(factory)
        print(f"month_report_twice_as_busy_ms: {doubled['month_report'] * 1000:.0f}")
        print(f"growth_when_month_doubles: {doubled['month_report'] / other_year['month_report']:.2f}")


if __name__ == "__main__":
    main()
