"""One real browser (Debian's headless Chromium driven by playwright) against a real threaded
server and a private redis-server: log in, watch a card change, check a visitor in, type French
numbers ("2,5" plates, a "1,50" discount) and close with confirmation — with the browser's
locale French and then American, whose number inputs would read "1,50" as 150."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from werkzeug.serving import make_server

from billing.config import ServerConfig
from billing.live import LiveState
from broker.messages import AgentStatus, MachineState
from broker.services import PrivateRedis
from dashboard import create_app
from tests.dashboard.conftest import PASSWORD, login, write_config
from tests.dashboard.test_pages_i18n import pages, populate

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
SESSION = "6f0c2a3e-0000-4000-8000-000000000001"

pytestmark = pytest.mark.browser


@pytest.fixture
def served_app(tmp_path: Path, ledger_path: Path, redis_server: PrivateRedis) -> Flask:
    config = ServerConfig.from_file(write_config(tmp_path, ledger_path, redis_server.url), environ={})
    return create_app({"FABMETER": config, "SSE_LIFETIME_S": 20.0, "SSE_BLOCK_MS": 500})


@pytest.fixture
def served(served_app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, served_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(params=["fr-FR", "en-US"])
def page(served: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page(locale=request.param, viewport={"width": 1280, "height": 800})
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
    quantity = page.locator("#item-quantity")
    expect(quantity).to_have_attribute("inputmode", "decimal")
    quantity.fill("")
    quantity.press_sequentially("2,5")  # key by key, as staff type it
    expect(quantity).to_have_value("2,5")
    page.click("#item-submit")
    expect(page.locator("#total")).to_have_text(re.compile(r"11,25\s€"))  # 2.5 × 4,50 €, not 25 ×

    page.locator("#discount-amount").press_sequentially("1,50")
    page.fill("#discount-reason", "bénévole")
    page.click("#discount-submit")
    expect(page.locator("#total")).to_have_text(re.compile(r"9,75\s€"))  # not 150 €, which is refused

    page.select_option("#close-payment_method", "cash")
    page.click("#close-submit")
    expect(page.locator("#confirm-total")).to_have_text(re.compile(r"9,75\s€"))  # the amount, asked first
    page.click("#confirm")
    expect(page.locator(".flash")).to_have_text("Visite clôturée.")
    expect(page.locator("#visit-state")).to_have_text("clôturée")
    expect(page.locator("#receipt-number")).to_have_text("R-000001")
    page.click("text=Accueil")
    expect(page.locator("#open-visits")).not_to_contain_text("Dominique")


def test_a_company_is_created_at_check_in_and_its_invoice_paid_later(served: str, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(served + "/desk/check-in")
    page.fill("#username", "bob")
    page.fill("#password", PASSWORD)
    page.click("#submit")
    expect(page.locator("#new-customer")).to_be_hidden()  # until "a new customer" is chosen
    page.select_option("#customer", "new")
    expect(page.locator("#new-customer")).to_be_visible()
    page.select_option("#new-kind", "company")
    for field, value in (("company_name", "Atelier Bois SARL"), ("company_address", "12 rue des Scieurs"),
                         ("postcode", "01000"), ("city", "Bourg-en-Bresse"), ("siren", "552 100 554")):  # fmt: skip
        page.fill(f"#new-{field}", value)
    page.select_option("#category", "company")
    page.click("#submit")
    expect(page.locator("#pin")).to_have_text(re.compile(r"^\d{6}$"))
    page.click("text=Ouvrir la visite")
    expect(page.locator("#visit-customer")).to_contain_text("Atelier Bois SARL")

    page.select_option("#item-item", "plywood-3mm")
    page.locator("#item-quantity").fill("")
    page.locator("#item-quantity").press_sequentially("2,5")
    page.click("#item-submit")
    page.select_option("#close-payment_method", "due")
    page.click("#close-submit")
    page.click("#confirm")
    expect(page.locator("#receipt-number")).to_have_text("F-000001")
    expect(page.locator("#invoice-due")).to_contain_text("Paiement à recevoir")

    page.goto(served + "/desk/unpaid/")
    row = page.locator("#unpaid tbody tr").first
    expect(row).to_contain_text("Atelier Bois SARL")
    row.locator("select").select_option("transfer")
    row.locator("input[type=submit]").click()
    expect(page.locator(".flash")).to_have_text("Paiement de F-000001 enregistré.")
    expect(page.locator("#unpaid")).to_contain_text("Aucune facture n'attend son paiement.")


SCREENS = [(390, 844), (800, 1280), (1280, 800)]  # a phone, a 10-inch tablet upright and lying
# the header's links and buttons that do not fit on the screen (their text, to say which)
HIDDEN_LINKS = """width => [...document.querySelectorAll('header.top a, header.top button')]
    .filter(e => e.offsetParent !== null && e.getBoundingClientRect().right > Math.min(width,
        e.closest('nav') ? e.closest('nav').getBoundingClientRect().right + 1 : width))
    .map(e => e.textContent.trim())"""


def test_every_page_fits_a_phone_and_a_tablet_without_scrolling_sideways(
    served: str, served_app: Flask, page: Any, redis_server: PrivateRedis
) -> None:
    """The document is never wider than the screen: tables scroll in their own box or become cards."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    desk = create_app({"FABMETER": served_app.config["FABMETER"], "REDIS": client, "WTF_CSRF_ENABLED": False})
    admin = desk.test_client()  # the same ledger and Redis, without CSRF, to set the day up
    assert login(admin).status_code == 302
    with desk.extensions["fabmeter.store"].session() as db:
        site = populate(db, admin, client)
    urls = [url for url in pages(served_app, site)  # not the CSVs and PDFs, nor an invoice's A4 page
            if admin.get(url).mimetype == "text/html" and not url.endswith(".html")]  # fmt: skip
    page.goto(served + "/login")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("#submit")
    too_wide = []
    for width, height in SCREENS:
        page.set_viewport_size({"width": width, "height": height})
        for url in urls:
            page.goto(served + url, wait_until="load")
            document = page.evaluate("document.documentElement.scrollWidth")
            header = page.evaluate("document.querySelector('header.top')?.getBoundingClientRect().height ?? 0")
            hidden = page.evaluate(HIDDEN_LINKS, width)
            if document > width or header > 70 or hidden:
                too_wide.append((width, url, document, round(header), hidden))
    assert len(urls) >= 15
    assert too_wide == [], f"(screen, page, document width, header height, links cut off): {too_wide}"


def test_a_live_update_changes_the_text_without_replacing_the_card(served: str, page: Any,
                                                                   redis_server: PrivateRedis) -> None:  # fmt: skip
    from playwright.sync_api import expect

    live = LiveState(redis.Redis.from_url(redis_server.url, decode_responses=True))
    live.status("pi-printer", AgentStatus(online=True, bdseq=1, version="1", machines=("printer-1",)))
    live.state(MachineState(machine="printer-1", state="printing", wall_ns=0, job="boat.gcode", progress=37.0,
                            session=SESSION, user="Camille"))  # fmt: skip
    page.goto(served + "/login")
    page.fill("#username", "bob")
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.goto(served + "/live/")
    expect(page.locator("#link")).to_have_class(re.compile(r"\bok\b"))
    page.evaluate("window.keptTitle = document.querySelector('#card-printer-1 h2')")
    live.state(MachineState(machine="printer-1", state="printing", wall_ns=0, job="boat.gcode", progress=52.0,
                            session=SESSION, user="Camille"))  # fmt: skip
    expect(page.locator("#card-printer-1 .progress-text")).to_have_text("52 %")
    assert page.evaluate("window.keptTitle === document.querySelector('#card-printer-1 h2')")  # not replaced
    assert page.evaluate("document.querySelector('#card-printer-1 progress').value") == 52


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
    expect(card.locator(".out-of-service")).to_have_text(re.compile(r"^Hors service.*miroir fêlé$"))
    card.locator("h2 a").click()
    page.click("text=Remettre en service")
    expect(page.locator(".flash")).to_have_text("Découpe laser est remise en service.")
    expect(page.locator("#service-state")).to_have_text("en service")
    page.click("nav >> text=En direct")
    expect(card.locator(".out-of-service")).to_have_count(0)
