"""Logging in and out, the language switch, and the access rules every request goes through.

Every endpoint needs a logged-in user except those in ``PUBLIC``; the admin blueprint also
needs the admin role. Both checks run on the server before any view. Failed logins slow the
account and the address down (``dashboard.throttle``); every attempt is in the audit log;
logging out ends every session of that user on the server.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import LoginManager, current_user, login_user, logout_user

from billing.audit import audit
from billing.models import utcnow
from dashboard import staff, throttle
from dashboard.formats import LANGUAGES
from dashboard.forms import ActionForm, LoginForm
from dashboard.store import ledger

bp = Blueprint("auth", __name__)
PUBLIC = frozenset({"auth.login", "auth.language", "health", "static", "wall.board", "wall.events"})


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host) may be a redirect target after login."""
    if not target:
        return url_for("live.board")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("live.board")
    return target


def _attempt(username: str, password: str) -> tuple[staff.StaffLogin | None, int]:
    """Check a login unless its account or address must wait; (user, seconds to wait). Audited."""
    db, now = ledger(), current_app.config.get("CLOCK", utcnow)()
    name, address = username.strip().lower()[:80], request.remote_addr or "unknown"
    keys, subject = (f"user:{name}", f"addr:{address}"), f"user {name[:60]}"
    wait = throttle.login_wait(db, keys, now)
    if wait:
        audit(db, "anonymous", "login_refused", subject, f"from {address}: wait {wait} s after failures")
        db.commit()
        return None, wait
    user = staff.authenticate(db, name, password)
    if user is None:
        throttle.count_failure(db, keys, now)
        audit(db, "anonymous", "login_failed", subject, f"from {address}")
    else:
        throttle.forget(db, keys[0])
        audit(db, user.username, "login", subject, f"from {address}")
    db.commit()
    return user, 0


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = LoginForm(next=request.args.get("next", ""))
    status = 401 if request.method == "POST" else 200
    if form.validate_on_submit():
        user, wait = _attempt(form.username.data or "", form.password.data or "")
        if user is not None:
            session.clear()  # a fresh session at login: no fixation
            session.permanent = True
            login_user(user)
            return redirect(_safe_next(form.next.data))
        if wait:
            form.password.errors.append(_("Too many failed logins: try again in %(seconds)s s.", seconds=wait))
            status = 429
        else:
            form.password.errors.append(_("Wrong username or password."))
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    if ActionForm().validate_on_submit():
        if current_user.is_authenticated:
            staff.end_sessions(ledger(), int(current_user.id), actor=current_user.username)
            ledger().commit()
        logout_user()
        session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/language/<code>")
def language(code: str) -> ResponseReturnValue:
    if code not in LANGUAGES:
        abort(404)
    session["lang"] = code
    back = urlsplit(request.referrer).path if request.referrer else None
    return redirect(_safe_next(back))


def require_login() -> ResponseReturnValue | None:
    if request.endpoint in PUBLIC or request.endpoint is None:
        return None
    if not current_user.is_authenticated:
        if request.accept_mimetypes.best == "text/event-stream" or request.path.endswith(".json"):
            abort(401)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None


def require_admin() -> None:
    if not current_user.is_authenticated or not current_user.is_admin:
        abort(403)


def install(app: Flask) -> None:
    manager = LoginManager(app)
    manager.user_loader(lambda user_id: staff.load(ledger(), user_id))
    app.before_request(require_login)
    app.register_blueprint(bp)
