"""One real browser (Debian's headless Chromium driven by playwright) against a real threaded
server and a private redis-server: log in, watch a card change, check a visitor in, close."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from werkzeug.serving import make_server

from billing.config import ServerConfig
from billing.live import LiveState
from broker.messages import AgentStatus, MachineState
from broker.services import PrivateRedis
from dashboard import create_app
from tests.dashboard.conftest import PASSWORD, write_config

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
SESSION = "6f0c2a3e-0000-4000-8000-000000000001"

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path: Path, ledger_path: Path, redis_server: PrivateRedis) -> Iterator[str]:
    config = ServerConfig.from_file(write_config(tmp_path, ledger_path, redis_server.url), environ={})
    app = create_app({"FABMETER": config, "SSE_LIFETIME_S": 20.0, "SSE_BLOCK_MS": 500})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def page(served: str) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(10_000)
        yield page
        browser.close()


def test_staff_watch_a_machine_then_check_a_visitor_in_and_out(served: str, page: Any,
                                                                 redis_server: PrivateRedis) -> None:  # fmt: skip
    from playwright.sync_api import expect

    live = LiveState(redis.Redis.from_url(redis_server.url, decode_responses=True))
    page.goto(served + "/desk/")
    page.fill("#username", "bob")
    page.fill("#password", PASSWORD)
    page.click("#submit")
    expect(page).to_have_url(served + "/desk/")

    page.goto(served + "/live/")
    card = page.locator("#card-printer-1")
    expect(card).to_have_class(re.compile(r"\boffline\b"))
    expect(page.locator("#link")).to_have_class(re.compile(r"\bok\b"))  # the event stream is open

    live.status("pi-printer", AgentStatus(online=True, bdseq=1, version="1", machines=("printer-1",)))
    live.state(MachineState(machine="printer-1", state="printing", wall_ns=0, job="boat.gcode", progress=37.0,
                            elapsed_s=600, remaining_s=1200, session=SESSION, user="Camille"))  # fmt: skip
    expect(card.locator(".badge")).to_have_text("impression")
    expect(card).not_to_have_class(re.compile(r"\boffline\b"))
    expect(card.locator(".job")).to_have_text("boat.gcode")
    expect(card.locator("progress")).to_have_attribute("value", "37.0")

    live.status("pi-printer", AgentStatus(online=False, bdseq=1, version="1", machines=("printer-1",)))
    expect(card).to_have_class(re.compile(r"\boffline\b"))

    page.click("text=Accueil")
    page.click("text=Accueillir un visiteur")
    page.fill("#name", "Dominique")
    page.select_option("#category", "walk-in")
    page.click("#submit")
    expect(page.locator("#pin")).to_have_text(re.compile(r"^\d{6}$"))
    page.click("text=Ouvrir la visite")

    page.select_option("#item-item", "plywood-3mm")
    page.fill("#item-quantity", "2")
    page.click("#item-submit")
    expect(page.locator("#total")).to_have_text(re.compile(r"9,00\s€"))

    page.select_option("#close-payment_method", "cash")
    page.click("#close-submit")
    expect(page.locator("#confirm-total")).to_have_text(re.compile(r"9,00\s€"))  # the amount, asked first
    page.click("#confirm")
    expect(page.locator(".flash")).to_have_text("Visite clôturée.")
    expect(page.locator("#visit-state")).to_have_text("clôturée")
    expect(page.locator("#receipt-number")).to_have_text("R-000001")
    page.click("text=Accueil")
    expect(page.locator("#open-visits")).not_to_contain_text("Dominique")


def test_staff_put_a_machine_out_of_service_from_the_board_and_back(served: str, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(served + "/live/")
    page.fill("#username", "bob")
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.goto(served + "/live/")
    card = page.locator("#card-laser-1")
    expect(card.locator(".out-of-service")).to_have_count(0)
    card.locator("h2 a").click()
    expect(page).to_have_url(served + "/machines/laser-1")
    page.fill("#out-reason", "miroir fêlé")
    page.click("#out-submit")
    expect(page.locator(".flash")).to_have_text("Découpe laser est hors service.")
    expect(page.locator("#service-state")).to_have_text("hors service")
    page.click("nav >> text=En direct")
    expect(card.locator(".out-of-service")).to_have_text("Hors service : miroir fêlé")
    card.locator("h2 a").click()
    page.click("text=Remettre en service")
    expect(page.locator(".flash")).to_have_text("Découpe laser est remise en service.")
    expect(page.locator("#service-state")).to_have_text("en service")
    page.click("nav >> text=En direct")
    expect(card.locator(".out-of-service")).to_have_count(0)
