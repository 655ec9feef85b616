"""The server's configuration (``server.toml``): one frozen dataclass, built in one place.

    config = ServerConfig.from_file(Path("/etc/fabmeter/server.toml"), environ=os.environ)
    config.database_url      # FABMETER_DATABASE_URL overrides it
    config.mqtt.port, config.organisation.tax_regime, config.billing.gap_wait_s

Every setting is documented in ``deploy/server.example.toml`` (a test keeps that true).
The billing service, the dashboard and the receipt printer all read this file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from broker.connection import MqttConfig, read_mqtt
from broker.messages import KDF_MAX_MEMORY_KIB, KDF_MAX_TIME_COST
from broker.settings import ConfigError, Settings

PRINTER_KINDS = ("none", "dummy", "file", "serial", "usb", "network")
TAX_REGIMES = ("vat", "franchise")
FRANCHISE_MENTION = "TVA non applicable, art. 293 B du CGI"


@dataclass(frozen=True)
class BillingMqtt(MqttConfig):
    """The broker connection, with billing's persistent session (the broker keeps events for days)."""

    client_id: str = "billing"
    session_expiry_s: int = 7 * 86400


@dataclass(frozen=True)
class PrinterConfig:
    """The receipt printer: ``kind`` selects which of the other keys matter."""

    kind: str = "none"
    path: Path | None = None  # file: where the ESC/POS bytes go
    device: str = "/dev/ttyUSB0"  # serial
    baudrate: int = 19200
    usb_vendor: int = 0x04B8
    usb_product: int = 0x0202
    host: str | None = None  # network
    port: int = 9100
    columns: int = 42
    timeout_s: float = 5.0
    # a job claimed longer ago than this is printed by another spooler (its own died mid-job)
    claim_timeout_s: float = 120.0


@dataclass(frozen=True)
class SmtpConfig:
    """Where the dashboard sends documents by e-mail; ``host`` None: e-mail is off."""

    host: str | None = None
    port: int = 587
    user: str | None = None
    password: str | None = None
    sender: str = ""  # the 'from' key
    starttls: bool = True
    timeout_s: float = 10.0


@dataclass(frozen=True)
class OrganisationConfig:
    """Who issues receipts and invoices, and under which tax regime."""

    name: str
    address: str
    siret: str
    tax_regime: str = "franchise"
    vat_rate: Decimal = Decimal("20")
    legal_mention: str = FRANCHISE_MENTION
    currency: str = "EUR"
    timezone: str = "Europe/Paris"
    payment_due_days: int = 30
    late_payment_rate: str = "trois fois le taux d'intérêt légal"

    @property
    def zone(self) -> ZoneInfo:
        """The one time zone of everything a person reads: screens, receipts, invoices, closures."""
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class BillingConfig:
    """Knobs of ingest, authorization and the allow-list."""

    batch_max: int = 1000
    tick_s: float = 0.5
    gap_wait_s: float = 2.0
    pin_digits: int = 6
    lockout_failures: int = 5
    lockout_window_s: int = 900
    backoff_base_s: int = 2
    backoff_max_s: int = 60
    allowlist_validity_s: int = 12 * 3600
    allowlist_time_cost: int = 2
    allowlist_memory_kib: int = 8_192
    offline_credit_cap_cents: int = 2000
    live_cost: bool = True
    stall_s: float = 60.0


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server side needs; secrets are read from their files at load."""

    database_url: str
    redis_url: str
    pepper: str
    secret_key: str | None
    mqtt: BillingMqtt
    printer: PrinterConfig
    organisation: OrganisationConfig
    billing: BillingConfig
    path: Path | None = None
    ledger_key: str | None = None  # seals every document and closure (billing.ledger.seals)
    anchor_file: Path | None = None  # where closures are anchored, outside the database
    smtp: SmtpConfig = SmtpConfig()
    archive_key: str | None = None  # Ed25519 private key (PEM) that signs the yearly archive

    @classmethod
    def from_file(cls, path: Path, environ: Mapping[str, str] = os.environ) -> ServerConfig:
        settings = Settings.load(path, environ=environ)
        config = cls.from_settings(settings)
        settings.finish()
        return config

    @classmethod
    def from_settings(cls, s: Settings) -> ServerConfig:
        return cls(
            database_url=_database_url(s),
            redis_url=s.text("redis_url", "redis://127.0.0.1:6379/0"),
            pepper=s.secret("pepper"),
            secret_key=s.secret("secret_key", None),
            mqtt=_mqtt(s.section("mqtt")),
            printer=_printer(s.section("printer")),
            organisation=_organisation(s.section("organisation", required=True)),
            billing=_billing(s.section("billing")),
            path=s.path,
            ledger_key=s.secret("ledger_key", None),
            anchor_file=s.path_value("anchor_file", None),
            smtp=_smtp(s.section("smtp")),
            archive_key=s.secret("archive_key", None),
        )


def _database_url(s: Settings) -> str:
    """A SQLite file beside the config unless told otherwise (``FABMETER_DATABASE_URL``)."""
    url: str = s.text("database_url", "sqlite:///fabmeter.db")
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix + ":memory:" and not url.startswith(prefix + "/"):
        url = prefix + str(s.path.parent.resolve() / url[len(prefix) :])
    return url


def _mqtt(s: Settings) -> BillingMqtt:
    d = BillingMqtt()
    return read_mqtt(s, BillingMqtt, client_id=s.text("client_id", d.client_id),
                     session_expiry_s=s.integer("session_expiry_s", d.session_expiry_s, minimum=60))  # fmt: skip


def _printer(s: Settings) -> PrinterConfig:
    d = PrinterConfig()
    config = PrinterConfig(
        kind=s.choice("kind", PRINTER_KINDS, d.kind),
        path=s.path_value("path", None),
        device=s.text("device", d.device),
        baudrate=s.integer("baudrate", d.baudrate, minimum=1200),
        usb_vendor=s.integer("usb_vendor", d.usb_vendor, minimum=0),
        usb_product=s.integer("usb_product", d.usb_product, minimum=0),
        host=s.text("host", None),
        port=s.integer("port", d.port, minimum=1),
        columns=s.integer("columns", d.columns, minimum=32),
        timeout_s=s.number("timeout_s", d.timeout_s, minimum=0.1),
        claim_timeout_s=s.number("claim_timeout_s", d.claim_timeout_s, minimum=10.0),
    )
    if config.claim_timeout_s <= 2 * config.timeout_s:
        # a live spooler still waiting for its printer must not see its job taken over
        raise s.error("claim_timeout_s", f"must be more than twice timeout_s ({config.timeout_s})")
    if config.kind == "file" and config.path is None:
        raise s.error("path", "is needed when kind = \"file\"")
    if config.kind == "network" and not config.host:
        raise s.error("host", "is needed when kind = \"network\"")
    return config


def _smtp(s: Settings) -> SmtpConfig:
    d = SmtpConfig()
    host, user = s.text("host", "") or None, s.text("user", "") or None
    port = s.integer("port", d.port, minimum=1)
    sender, starttls = s.text("from", ""), s.boolean("starttls", d.starttls)
    timeout = s.number("timeout_s", d.timeout_s, minimum=1.0)
    password_file = s.text("password_file", "")
    if host is None:
        return SmtpConfig(port=port, sender=sender, starttls=starttls, timeout_s=timeout)
    if port > 65535:
        raise s.error("port", f"must be a TCP port (1 to 65535), not {port}")
    if "@" not in sender:
        raise s.error("from", f"must be the address documents are sent from (fablab@example.org), not {sender!r}")
    if user is not None and not password_file:
        raise s.error("password_file", "is needed when user is set")
    password = s.secret("password") if user is not None else None
    return SmtpConfig(host=host, port=port, user=user, password=password, sender=sender,
                      starttls=starttls, timeout_s=timeout)  # fmt: skip


def _organisation(s: Settings) -> OrganisationConfig:
    regime = s.choice("tax_regime", TAX_REGIMES, "franchise")
    rate = s.number("vat_rate", 20.0, minimum=0.0)
    default_mention = FRANCHISE_MENTION if regime == "franchise" else ""
    return OrganisationConfig(
        name=s.text("name"),
        address=s.text("address"),
        siret=s.text("siret"),
        tax_regime=regime,
        vat_rate=Decimal(str(rate)).quantize(Decimal("0.01")),
        legal_mention=s.text("legal_mention", default_mention),
        currency=s.choice("currency", ("EUR",), "EUR"),
        timezone=_timezone(s),
        payment_due_days=s.integer("payment_due_days", 30, minimum=0),
        late_payment_rate=s.text("late_payment_rate", "trois fois le taux d'intérêt légal"),
    )


def _timezone(s: Settings) -> str:
    name: str = s.text("timezone", "Europe/Paris")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise s.error("timezone", f"{name!r} is not a time zone (e.g. Europe/Paris)") from None
    return name


def _at_most(s: Settings, key: str, value: int, limit: int) -> int:
    if value > limit:
        raise s.error(key, f"must be at most {limit} (agents refuse dearer allow-lists), not {value}")
    return value


def _billing(s: Settings) -> BillingConfig:
    d = BillingConfig()
    return BillingConfig(
        batch_max=s.integer("batch_max", d.batch_max, minimum=1),
        tick_s=s.number("tick_s", d.tick_s, minimum=0.01),
        gap_wait_s=s.number("gap_wait_s", d.gap_wait_s, minimum=0.0),
        pin_digits=s.integer("pin_digits", d.pin_digits, minimum=6),
        lockout_failures=s.integer("lockout_failures", d.lockout_failures, minimum=1),
        lockout_window_s=s.integer("lockout_window_s", d.lockout_window_s, minimum=1),
        backoff_base_s=s.integer("backoff_base_s", d.backoff_base_s, minimum=1),
        backoff_max_s=s.integer("backoff_max_s", d.backoff_max_s, minimum=1),
        allowlist_validity_s=s.integer("allowlist_validity_s", d.allowlist_validity_s, minimum=60),
        allowlist_time_cost=_at_most(s, "allowlist_time_cost", s.integer("allowlist_time_cost",
                                     d.allowlist_time_cost, minimum=1), KDF_MAX_TIME_COST),
        allowlist_memory_kib=_at_most(s, "allowlist_memory_kib", s.integer("allowlist_memory_kib",
                                      d.allowlist_memory_kib, minimum=8), KDF_MAX_MEMORY_KIB),
        offline_credit_cap_cents=s.integer(
            "offline_credit_cap_cents", d.offline_credit_cap_cents, minimum=0
        ),
        live_cost=s.boolean("live_cost", d.live_cost),
        stall_s=s.number("stall_s", d.stall_s, minimum=1.0),
    )


__all__ = ["ConfigError", "ServerConfig"]
