"""The staff dashboard: live board, desk, admin and reports (Flask, one blueprint per area).

    app = create_app()                       # reads the server config named by FABMETER_CONFIG
    app = create_app({"FABMETER": config, "REDIS": fakeredis.FakeRedis(decode_responses=True)})

Production: ``gunicorn --worker-class gthread "dashboard:create_app()"`` (each server-sent
event stream holds a thread). Every page but the login page and ``/healthz`` needs a login;
the admin pages need the admin role; every form carries a CSRF token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, redirect, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from billing.config import ConfigError, ServerConfig
from billing.ledger.events import record_organisation
from billing.ledger.seals import open_segment
from billing.models import utcnow
from dashboard import (
    admin,
    auth,
    customers,
    desk,
    documents,
    formats,
    labels,
    live,
    machines,
    receipts,
    reports,
    store,
    unpaid,
    wall,
)
from dashboard.errors import SetupError

SHIFT = timedelta(hours=10)


class ShiftSessions(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` whenever the request came over HTTPS (or config says so)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (bool(request) and request.is_secure)


def _server_config(test_config: Mapping[str, Any] | None) -> ServerConfig:
    if test_config and "FABMETER" in test_config:
        found: ServerConfig = test_config["FABMETER"]
        return found
    path = os.environ.get("FABMETER_CONFIG")
    if not path:
        raise SetupError("set FABMETER_CONFIG to the server's TOML configuration (server.toml)")
    try:
        return ServerConfig.from_file(Path(path), environ=os.environ)
    except ConfigError as err:
        raise SetupError(str(err)) from err


def _settings(config: ServerConfig) -> dict[str, Any]:
    if not config.secret_key:
        raise SetupError(f"the dashboard needs secret_key_file in {config.path}: a file of random text")
    return {
        "SECRET_KEY": config.secret_key,
        "FABMETER": config,
        "PERMANENT_SESSION_LIFETIME": SHIFT,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": False,  # True when the request is HTTPS (ShiftSessions)
        "SESSION_COOKIE_NAME": "fabmeter_session",
        "WTF_CSRF_TIME_LIMIT": int(SHIFT.total_seconds()),
        "BABEL_DEFAULT_LOCALE": formats.DEFAULT_LANGUAGE,
        "SSE_LIFETIME_S": 300.0,
        "SSE_BLOCK_MS": 15000,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "CLOCK": utcnow,
    }


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The dashboard app; ``test_config`` overrides settings (``FABMETER``, ``REDIS`` client…)."""
    app = Flask(__name__)
    config = _server_config(test_config)
    app.config.update(_settings(config))
    app.config.update(test_config or {})
    app.session_interface = ShiftSessions()
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    opened = store.Store.open(config.database_url, redis_url=config.redis_url, client=app.config.get("REDIS"),
                              ledger_key=config.ledger_key)  # fmt: skip
    store.install(app, opened)
    with opened.session() as db:
        open_segment(db, config.ledger_key)  # a new key's segment exists before its first seal
        record_organisation(db, config.organisation)  # a changed name, SIRET or tax regime is chained
    receipts.install(app, opened.sessions, config.printer, config.organisation.zone)
    formats.install(app)
    labels.install(app)
    CSRFProtect(app)
    auth.install(app)
    for blueprint in (live.bp, desk.bp, unpaid.bp, documents.bp, customers.bp, machines.bp, admin.bp, reports.bp,
                      wall.bp):
        app.register_blueprint(blueprint)
    _routes(app)
    return app


def _error_page(err: Any) -> ResponseReturnValue:
    code = getattr(err, "code", 500) or 500
    messages = {
        400: (_("Request not understood"), _("The form was incomplete or out of date: go back, reload and try again.")),
        401: (_("Login needed"), _("Log in to see this page.")),
        403: (_("Not allowed"), _("Your account may not open this page; ask an administrator.")),
        404: (_("Page not found"), _("This address leads nowhere: check it, or start from the board.")),
        405: (_("Not allowed this way"), _("This address does not take this kind of request.")),
    }  # fmt: skip
    title, message = messages.get(code, (str(code), ""))
    described = getattr(err, "description", None)
    if described and described != getattr(type(err), "description", None):
        message = described  # abort(400, description=…): the page's own words on what was wrong
    return render_template("error.html", code=code, title=title, message=message), code


def _routes(app: Flask) -> None:
    @app.route("/")
    def home() -> ResponseReturnValue:
        return redirect(url_for("live.board"))

    @app.route("/healthz")
    def health() -> ResponseReturnValue:
        """200 when the ledger and Redis answer, 503 naming what does not."""
        problems = store.store().problems()
        return jsonify(ok=not problems, problems=problems), 503 if problems else 200

    @app.errorhandler(CSRFError)
    def csrf_error(err: CSRFError) -> ResponseReturnValue:
        message = _("The form expired or came from elsewhere: reload the page and send it again.")
        return render_template("error.html", code=400, title=_("Form expired"), message=message), 400

    for code in (400, 401, 403, 404, 405):
        app.register_error_handler(code, _error_page)

    @app.after_request
    def headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'"
        )
        return response
