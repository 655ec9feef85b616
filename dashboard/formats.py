"""How the dashboard shows money, times and durations, in French (default) or English.

    money(Decimal("12.4"))         # '12,40 €' in French, '€12.40' in English
    clock(dt)                      # '03:40' in the organisation's time zone
    duration(5400)                 # '1 h 30'

Times are shown in ``[organisation] timezone`` (Europe/Paris by default), never in the server's
OS zone; ``now()`` is the app's clock (``app.config["CLOCK"]``, which tests replace).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal

from babel.numbers import format_currency, format_decimal, format_percent
from flask import Flask, current_app, request, session
from flask_babel import Babel, get_locale

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"


def select_locale() -> str:
    """The language chosen with the FR/EN switch, else French."""
    chosen = session.get("lang") if request else None
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def local_zone() -> tzinfo:
    """The organisation's time zone, in which every page shows times."""
    return current_app.config["FABMETER"].organisation.zone  # type: ignore[no-any-return]


def now() -> datetime:
    """The current moment by the app's clock (UTC, aware)."""
    moment: datetime = current_app.config["CLOCK"]()
    return moment


def _locale() -> str:
    return str(get_locale() or DEFAULT_LANGUAGE)


def money(amount: Decimal | int | None, cents: bool = False) -> str:
    if amount is None or amount == "":
        return ""
    value = Decimal(amount) / 100 if cents else Decimal(amount)
    return format_currency(value, "EUR", locale=_locale())


def number(value: Decimal | int | float) -> str:
    return format_decimal(value, locale=_locale())


def percent(ratio: float) -> str:
    """A share 0..1 as the locale writes it: '12,5 %' in French, '12.5%' in English."""
    return format_percent(ratio, format="#,##0.0 %" if _locale() == "fr" else "#,##0.0%", locale=_locale())


def clock(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment.astimezone(local_zone()):%H:%M}"


def when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(local_zone())
    return f"{local:%d/%m/%Y %H:%M}" if _locale() == "fr" else f"{local:%Y-%m-%d %H:%M}"


def duration(seconds: int | float | None) -> str:
    """'1 h 05', '12 min', '40 s'."""
    if seconds is None:
        return ""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours} h {minutes:02d}"
    if minutes:
        return f"{minutes} min"
    return f"{total} s"


def install(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters.update(money=money, number=number, percent=percent, clock=clock, when=when, duration=duration)
    app.jinja_env.globals["get_locale"] = _locale
