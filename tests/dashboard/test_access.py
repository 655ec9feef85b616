"""Access rules: login everywhere but /login and /healthz, roles on the server, CSRF, cookies."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from billing.models import StaffUser
from tests.dashboard.conftest import PASSWORD, login

PAGES = [
    "/", "/live/", "/desk/", "/desk/check-in", "/desk/visit/1", "/reports/", "/reports/takings.csv",
    "/reports/lines.csv", "/admin/", "/admin/machines", "/admin/machines/laser-1", "/admin/materials",
    "/admin/materials/1", "/admin/categories", "/admin/categories/1", "/admin/items", "/admin/items/1",
    "/admin/tariffs", "/admin/users", "/admin/users/1", "/desk/checked-in/1", "/documents/", "/documents/1",
    "/documents/1/receipt.pdf", "/documents/1/invoice.pdf", "/documents/1/invoice.html",
    "/admin/tariffs", "/admin/users", "/admin/users/1", "/customers/", "/customers/new", "/desk/unpaid/",
]  # fmt: skip
POSTS = [
    "/logout", "/desk/check-in", "/desk/visit/1/item", "/desk/visit/1/discount", "/desk/visit/1/attach",
    "/desk/visit/1/waiting", "/desk/visit/1/close", "/desk/visit/1/reprint", "/desk/visit/1/unlock/1",
    "/desk/terminal/laser-1/lift",
    "/desk/visit/1/correct", "/desk/visit/1/credit", "/documents/1/send",
    "/desk/visit/1/correct", "/desk/visit/1/credit", "/desk/visit/1/customer", "/desk/unpaid/1/pay",
    "/customers/new", "/customers/1",
    "/admin/machines", "/admin/materials", "/admin/categories", "/admin/items", "/admin/tariffs",
    "/admin/users", "/admin/users/1",
]  # fmt: skip
ADMIN_PAGES = [p for p in PAGES if p.startswith("/admin")]


def token(client: FlaskClient, url: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get(url).text)
    if found is None:
        found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text)
    assert found is not None, f"no CSRF token on {url}"
    return found.group(1)


@pytest.mark.parametrize("url", PAGES)
def test_every_page_sends_a_stranger_to_the_login_page(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("url", [p for p in POSTS if p != "/logout"])
def test_every_form_refuses_a_stranger(client: FlaskClient, url: str, db: Session) -> None:
    response = client.post(url, data={"name": "x", "payment_method": "cash"})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_the_event_stream_answers_401_not_a_login_page(client: FlaskClient) -> None:
    response = client.get("/live/events", headers={"Accept": "text/event-stream"})
    assert response.status_code == 401


def test_health_needs_no_login_and_says_what_is_down(make_app: Callable[..., Flask]) -> None:
    assert make_app().test_client().get("/healthz").json == {"ok": True, "problems": []}

    class DeadRedis:
        def ping(self) -> None:
            import redis

            raise redis.ConnectionError("refused")

    response = make_app(REDIS=DeadRedis()).test_client().get("/healthz")
    assert response.status_code == 503 and (response.json or {})["problems"] == ["redis: ConnectionError"]


def test_health_names_the_part_of_billing_that_stopped_moving(make_app: Callable[..., Flask]) -> None:
    import json
    import time

    import fakeredis

    from billing.health import HEALTH

    client = fakeredis.FakeRedis(decode_responses=True)
    report = {"at": time.time(), "problems": ["ingest: no progress for 75 s while 3 messages wait"]}
    client.set(HEALTH, json.dumps(report))
    response = make_app(REDIS=client).test_client().get("/healthz")
    assert response.status_code == 503
    assert (response.json or {})["problems"] == ["billing ingest: no progress for 75 s while 3 messages wait"]


def test_every_page_renders_for_an_admin(admin: FlaskClient) -> None:
    for url in PAGES:
        response = admin.get(url, follow_redirects=True)
        assert response.status_code in (200, 404), url
        assert response.status_code == 200 or url.startswith(("/desk/visit/1", "/desk/checked-in/", "/documents/1")), url


def test_wrong_password_is_refused_with_a_message(client: FlaskClient) -> None:
    response = login(client, "alice", "not the password")
    assert response.status_code == 401
    assert "Identifiant ou mot de passe incorrect." in response.text
    assert client.get("/desk/").status_code == 302
    assert login(client, "nobody", PASSWORD).status_code == 401


def test_a_disabled_user_is_logged_out_and_cannot_log_in(client: FlaskClient, db: Session) -> None:
    assert login(client, "bob").status_code == 302
    bob = db.query(StaffUser).filter_by(username="bob").one()
    bob.active = False
    db.commit()
    assert client.get("/desk/").status_code == 302
    assert login(client, "bob").status_code == 401


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_staff_cannot_open_admin_pages(staff: FlaskClient, url: str) -> None:
    assert staff.get(url).status_code == 403


def test_staff_cannot_post_to_admin_either(staff: FlaskClient, db: Session) -> None:
    response = staff.post("/admin/users", data={"username": "mallory", "password": "x" * 12, "role": "admin"})
    assert response.status_code == 403
    assert db.query(StaffUser).filter_by(username="mallory").first() is None


def test_only_an_admin_sees_the_admin_link(staff: FlaskClient, make_app: Callable[..., Flask]) -> None:
    assert 'href="/admin/"' not in staff.get("/desk/").text
    other = make_app().test_client()
    login(other, "alice")
    assert 'href="/admin/"' in other.get("/desk/").text


def test_login_redirects_only_inside_the_site(client: FlaskClient) -> None:
    for target, expected in [("/desk/", "/desk/"), ("//evil.example/x", "/live/"),
                             ("https://evil.example/", "/live/")]:  # fmt: skip
        response = client.post("/login", data={"username": "alice", "password": PASSWORD, "next": target})
        assert response.headers["Location"] == expected
        client.post("/logout")


def test_logout_ends_the_session(admin: FlaskClient) -> None:
    assert admin.post("/logout").status_code == 302
    assert admin.get("/desk/").status_code == 302


def test_session_cookie_is_httponly_lax_and_lasts_a_shift(client: FlaskClient) -> None:
    response = login(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    expires = re.search(r"Expires=([^;]+)", cookie)
    assert expires is not None
    left = datetime.strptime(expires.group(1), "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert timedelta(hours=9) < left - datetime.now(UTC) <= timedelta(hours=10, minutes=1)


def test_session_cookie_is_secure_over_https(app: Flask) -> None:
    client = app.test_client()
    response = client.post("/login", data={"username": "alice", "password": PASSWORD},
                           base_url="https://desk.example")  # fmt: skip
    assert "Secure" in response.headers["Set-Cookie"]
    behind_proxy = app.test_client().post(
        "/login", data={"username": "alice", "password": PASSWORD}, headers={"X-Forwarded-Proto": "https"}
    )
    assert "Secure" in behind_proxy.headers["Set-Cookie"]


# ---------------------------------------------------------------- CSRF (enabled for real)


@pytest.fixture
def guarded(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app(WTF_CSRF_ENABLED=True).test_client()


def _login_with_token(client: FlaskClient, username: str = "alice") -> None:
    data = {"username": username, "password": PASSWORD, "csrf_token": token(client, "/login")}
    assert client.post("/login", data=data).status_code == 302


def test_login_without_a_csrf_token_is_refused(guarded: FlaskClient) -> None:
    response = guarded.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert guarded.get("/desk/").status_code == 302
    _login_with_token(guarded)
    assert guarded.get("/desk/").status_code == 200


def test_desk_forms_need_the_csrf_token(guarded: FlaskClient, db: Session) -> None:
    _login_with_token(guarded)
    data = {"name": "Camille", "category": "walk-in", "with_pin": "y"}
    assert guarded.post("/desk/check-in", data=data).status_code == 400
    assert "Camille" not in guarded.get("/desk/").text
    data["csrf_token"] = token(guarded, "/desk/check-in")
    response = guarded.post("/desk/check-in", data=data)
    assert response.status_code == 303 and "Camille" in guarded.get("/desk/").text


def test_admin_forms_need_the_csrf_token(guarded: FlaskClient, db: Session) -> None:
    _login_with_token(guarded)
    data = {"code": "wood", "name": "Bois", "active": "y"}
    assert guarded.post("/admin/categories", data=data).status_code == 400
    data["csrf_token"] = token(guarded, "/admin/categories")
    assert guarded.post("/admin/categories", data=data).status_code == 302


def test_logout_needs_the_csrf_token(guarded: FlaskClient) -> None:
    _login_with_token(guarded)
    assert guarded.post("/logout").status_code == 400
    assert guarded.get("/desk/").status_code == 200
    guarded.post("/logout", data={"csrf_token": token(guarded, "/desk/")})
    assert guarded.get("/desk/").status_code == 302
