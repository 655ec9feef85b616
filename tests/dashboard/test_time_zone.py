"""Every time a person reads is in ``[organisation] timezone``, never in the server's OS zone.

The server here runs in Pacific/Kiritimati (UTC+14) while the fablab is in Europe/Paris: a page,
a receipt printed by the dashboard's spooler or a report that used the OS zone would be 13 hours
off. The app's clock is ``app.config["CLOCK"]``, so nothing depends on today's date.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from billing.catalogue import add_item
from billing.config import PrinterConfig, ServerConfig
from billing.models import Visit
from tests.dashboard.conftest import login
from tests.dashboard.test_desk import close

ARRIVED = datetime(2026, 11, 26, 22, 30, tzinfo=UTC)  # 23:30 in Paris, 12:30 the next day in Kiritimati


@pytest.fixture(autouse=True)
def far_os_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _visit(app: Flask) -> int:
    client = app.test_client()
    assert login(client, "bob").status_code == 302
    response = client.post("/desk/check-in", data={"category": "walk-in", "with_pin": "y"})
    assert response.status_code == 303
    with app.extensions["fabmeter.store"].session() as db:
        return db.query(Visit).order_by(Visit.id.desc()).first().id  # type: ignore[union-attr]


def test_the_visit_page_shows_the_organisations_time(make_app: Callable[..., Flask]) -> None:
    app = make_app(CLOCK=lambda: ARRIVED)
    visit_id = _visit(app)
    with app.extensions["fabmeter.store"].session() as db:
        visit = db.get(Visit, visit_id)
        assert visit is not None and visit.opened_at == ARRIVED  # the app's clock, not the machine's
    client = app.test_client()
    login(client, "bob")
    page = client.get(f"/desk/visit/{visit_id}").text
    assert "26/11/2026 23:30" in page and "27/11/2026 12:30" not in page
    assert "23:30" in client.get("/desk/").text


@pytest.mark.parametrize(
    ("now", "first_day"),
    [
        (datetime(2026, 3, 31, 21, 30, tzinfo=UTC), "01/03/2026 00:00"),  # 23:30 on 31 March in Paris
        (datetime(2026, 3, 31, 22, 30, tzinfo=UTC), "01/04/2026 00:00"),  # 00:30 on 1 April in Paris
    ],
)  # fmt: skip
def test_the_reports_default_to_this_month_in_the_organisations_zone(
    make_app: Callable[..., Flask], now: datetime, first_day: str
) -> None:
    client = make_app(CLOCK=lambda: now).test_client()
    login(client, "bob")
    assert first_day in client.get("/reports/").text


def test_a_receipt_printed_by_the_dashboard_carries_the_organisations_time(
    make_app: Callable[..., Flask], server_config: ServerConfig, tmp_path: Path
) -> None:
    out = tmp_path / "receipt.bin"
    config = dataclasses.replace(server_config, printer=PrinterConfig(kind="file", path=out))
    app = make_app(FABMETER=config, CLOCK=lambda: ARRIVED)
    visit_id = _visit(app)
    with app.extensions["fabmeter.store"].session() as db:
        add_item(db, visit_id, "plywood-3mm", Decimal(1), actor="bob")
        db.commit()
    client = app.test_client()
    login(client, "bob")
    assert close(client, visit_id, "card").status_code == 302
    assert app.extensions["fabmeter.printer"].wait_idle(10)
    assert b"26/11/2026 23:30" in out.read_bytes()


def test_the_desk_says_when_a_print_ends_in_the_organisations_time(
    make_app: Callable[..., Flask],
) -> None:
    from billing.models import UsageSession

    app = make_app(CLOCK=lambda: ARRIVED)
    visit_id = _visit(app)
    db: Session
    with app.extensions["fabmeter.store"].session() as db:
        db.add(UsageSession(id="6f0c2a3e-0000-4000-8000-00000000000a", agent="pi-printer",
                            machine_id="printer-1", visit_id=visit_id, job="boat.gcode",
                            expected_end_at=datetime(2026, 11, 27, 2, 40, tzinfo=UTC)))  # fmt: skip
        db.commit()
    client = app.test_client()
    login(client, "bob")
    assert "03:40" in client.get(f"/desk/visit/{visit_id}").text
    assert "03:40" in client.get("/desk/").text
