"""The ledger's tables (SQLAlchemy 2). Money is integer cents; exact fractions are integers too.

    with Session(engine) as db:
        visit = db.get(Visit, 12)
        visit.lines            # [ChargeLine(...), ...]; ``line.amount`` is a Decimal in euros

Conventions: every datetime is stored as naive UTC and read back as aware UTC (``UTCDateTime``);
prices are integer cents (``*_cents``) or, where a cent is too coarse, integer milli-cents
(``*_millicents``) and quantities integer thousandths (``*_milli``); properties give Decimals.
Schema changes go through Alembic (``billing/migrations``, ``fabmeter db upgrade``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from billing.money import euros

THOUSAND = Decimal(1000)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MACHINE_KINDS = ("printer", "laser", "cnc", "sewing", "other")
TIME_BASES = ("session", "busy", "job")
VISIT_STATES = ("open", "waiting", "closed")
PAYMENT_METHODS = ("cash", "card", "cheque", "transfer", "free", "due")  # due: an invoice paid later
CUSTOMER_KINDS = ("person", "company")
LINE_KINDS = ("time", "start_fee", "material", "item", "discount")
SESSION_STATES = ("open", "ended", "priced")
ROLES = ("staff", "admin")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Material(Base):
    """A filament (priced per gram, with diameter and density) or any material sold by weight.

    ``price_cents_per_kg`` keeps the price per gram exact: 6000 = 60 €/kg = 0,06 €/g.
    """

    __tablename__ = "materials"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)  # "pla", named by JobEnded.material
    name: Mapped[str] = mapped_column(String(120))
    diameter_um: Mapped[int] = mapped_column(Integer, default=1750)  # 1750 µm = 1.75 mm
    density_mg_cm3: Mapped[int] = mapped_column(Integer, default=1240)  # 1240 = 1.24 g/cm³
    price_cents_per_kg: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def diameter_mm(self) -> Decimal:
        return Decimal(self.diameter_um) / THOUSAND

    @property
    def density_g_cm3(self) -> Decimal:
        return Decimal(self.density_mg_cm3) / THOUSAND

    @property
    def price_per_gram(self) -> Decimal:
        """Euros per gram, exact."""
        return Decimal(self.price_cents_per_kg) / Decimal(100_000)


class CatalogueItem(Base):
    """Something sold by the piece at the desk: a plywood sheet, a training, a membership."""

    __tablename__ = "catalogue_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    unit: Mapped[str] = mapped_column(String(20), default="pièce")
    price_cents: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # selling a training grants its qualification, for ``grants_validity_days`` (None: no expiry)
    grants_qualification_id: Mapped[int | None] = mapped_column(ForeignKey("qualifications.id"))
    grants_validity_days: Mapped[int | None] = mapped_column(Integer)

    grants_qualification: Mapped[Qualification | None] = relationship()

    @property
    def price(self) -> Decimal:
        return euros(self.price_cents)


class Qualification(Base):
    """A training a machine or a group of machines needs (``laser``: "découpe laser").

    Every machine whose ``qualification_id`` names it is in its group.
    """

    __tablename__ = "qualifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)  # a wire id: lowercase, digits, hyphens
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Machine(Base):
    """A machine on an agent; ``id`` is the wire id (``laser-1``). Agents announce theirs."""

    __tablename__ = "machines"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20), default="other")  # MACHINE_KINDS
    agent: Mapped[str | None] = mapped_column(String(63), index=True)
    material_id: Mapped[int | None] = mapped_column(ForeignKey("materials.id"))  # loaded filament
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    qualification_id: Mapped[int | None] = mapped_column(ForeignKey("qualifications.id"))  # needed to unlock
    out_of_service_reason: Mapped[str | None] = mapped_column(String(300))  # None: in service
    out_of_service_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # upkeep thresholds set by an admin (None: not counted against): busy hours, jobs, filament metres
    service_every_h: Mapped[int | None] = mapped_column(Integer)
    service_every_jobs: Mapped[int | None] = mapped_column(Integer)
    service_every_m: Mapped[int | None] = mapped_column(Integer)

    material: Mapped[Material | None] = relationship()
    qualification: Mapped[Qualification | None] = relationship()


class Category(Base):
    """A customer category (walk-in, member, company, repair café…); staff may add more."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Tariff(Base):
    """What a category pays on a machine; the prices live in its versions (latest = current).

    A machine is allowed for a category exactly when such a tariff exists and is active.
    """

    __tablename__ = "tariffs"
    __table_args__ = (UniqueConstraint("machine_id", "category_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    machine: Mapped[Machine] = relationship()
    category: Mapped[Category] = relationship()
    versions: Mapped[list[TariffVersion]] = relationship(
        back_populates="tariff", order_by="TariffVersion.version"
    )


class TariffVersion(Base):
    """One immutable set of prices of a tariff. An edit adds a version; lines keep theirs.

    Time charge = start fee + unit price × max(started units after grace, minimum units),
    counting ``basis`` seconds (session, busy or job time); plus material per gram if
    ``material_applies``.
    """

    __tablename__ = "tariff_versions"
    __table_args__ = (UniqueConstraint("tariff_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tariff_id: Mapped[int] = mapped_column(ForeignKey("tariffs.id"))
    version: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    unit_s: Mapped[int] = mapped_column(Integer, default=60)
    minimum_units: Mapped[int] = mapped_column(Integer, default=0)
    start_fee_cents: Mapped[int] = mapped_column(Integer, default=0)
    grace_s: Mapped[int] = mapped_column(Integer, default=0)
    basis: Mapped[str] = mapped_column(String(10), default="session")  # TIME_BASES
    material_applies: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))

    tariff: Mapped[Tariff] = relationship(back_populates="versions")


class Customer(Base):
    """A person or a company (``kind``); a company gets invoices naming it in full.

    ``ref`` is the pseudonym used in documents. ``company_address`` holds the street lines of
    either kind; ``siren`` a SIREN (9 digits) or a SIRET (14), digits only; ``country`` an ISO
    3166 code ('FR'). Erasing a person blanks the personal fields and keeps ``ref``.
    """

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(20), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="person", server_default="person")  # CUSTOMER_KINDS
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    company_name: Mapped[str | None] = mapped_column(String(200))
    company_address: Mapped[str | None] = mapped_column(Text)
    postcode: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))
    siren: Mapped[str | None] = mapped_column(String(14))
    vat_number: Mapped[str | None] = mapped_column(String(20))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the person's own badge (HMAC of its UID), how a later check-in finds them; never a loan badge
    badge_hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class Visit(Base):
    """A visitor's ticket: opened at check-in, collects sessions and lines, closed at the desk.

    ``state``: open; waiting (the visitor left, a print still runs: closed at pickup); closed.
    ``label`` is what the machine shows ("Visiteur 12" or the customer's name).
    """

    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(10), default="open", index=True)  # VISIT_STATES
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    label: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    payment_method: Mapped[str | None] = mapped_column(String(20))  # PAYMENT_METHODS
    note: Mapped[str | None] = mapped_column(Text)

    category: Mapped[Category] = relationship()
    customer: Mapped[Customer | None] = relationship()
    lines: Mapped[list[ChargeLine]] = relationship(back_populates="visit", order_by="ChargeLine.id")
    sessions: Mapped[list[UsageSession]] = relationship(
        back_populates="visit", order_by="UsageSession.started_at"
    )
    credentials: Mapped[list[Credential]] = relationship(back_populates="visit")


class Credential(Base):
    """A badge bound to a visit (``secret_hash`` = HMAC of the UID) or a visit's PIN.

    A PIN is stored as Argon2id of HMAC(pepper, PIN); ``bucket`` (a few bits of another HMAC)
    narrows which hashes to try. ``sealed_secret`` is the PIN or UID encrypted under a key
    derived from the pepper (AES-GCM), so each allow-list can digest it under a fresh salt; a
    copy of the database alone opens none. Refusals are counted; after repeated ones the
    credential locks until staff unlock it.
    """

    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # badge | pin
    secret_hash: Mapped[str] = mapped_column(String(200), index=True)
    bucket: Mapped[int | None] = mapped_column(Integer)
    sealed_secret: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    visit: Mapped[Visit] = relationship(back_populates="credentials")


class UsageSession(Base):
    """A machine session, keyed by the agent-made UUID; totals grow with checkpoints.

    ``visit_id`` is set only on billing's own decision (an ``AuthGrant`` for this session, an
    ``AllowlistGrant`` the agent held, or staff attaching it at the desk); until then the session is
    unclaimed. ``after_close_of`` names a closed visit the usage came too late for: it is never
    charged there, staff attach it to a new visit. Priced once ended and attached (``state``
    becomes priced).
    """

    __tablename__ = "usage_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agent: Mapped[str] = mapped_column(String(63))
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), index=True)
    auth: Mapped[str] = mapped_column(String(10), default="online")  # online | offline | none
    credential: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(10), default="open", index=True)  # SESSION_STATES
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(30))
    session_s: Mapped[int] = mapped_column(Integer, default=0)
    busy_s: Mapped[int] = mapped_column(Integer, default=0)
    job_s: Mapped[int] = mapped_column(Integer, default=0)
    job: Mapped[str | None] = mapped_column(String(500))
    job_state: Mapped[str | None] = mapped_column(String(20))  # running | JOB_OUTCOMES
    job_progress_milli: Mapped[int | None] = mapped_column(Integer)  # 0..100000
    # 10 km of filament is 10^10 thousandths of a mm: past PostgreSQL's 32-bit INTEGER
    job_estimate_mm_milli: Mapped[int | None] = mapped_column(BigInteger)  # whole-file estimate
    filament_mm_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    material_code: Mapped[str | None] = mapped_column(String(40))
    expected_end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    after_close_of: Mapped[int | None] = mapped_column(Integer)  # a visit id, kept for staff

    machine: Mapped[Machine] = relationship()
    visit: Mapped[Visit | None] = relationship(back_populates="sessions")
    lines: Mapped[list[ChargeLine]] = relationship(back_populates="session")

    @property
    def filament_mm(self) -> Decimal:
        return Decimal(self.filament_mm_milli) / THOUSAND


class AuthGrant(Base):
    """Billing's own yes to a credential at a machine: the session the agent asked for (its UUID
    in the auth request) is charged to ``visit_id`` — that agent's session on that machine only."""

    __tablename__ = "auth_grants"

    # keyed by agent too: another agent asking with the same session id cannot take this grant
    agent: Mapped[str] = mapped_column(String(63), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    machine_id: Mapped[str] = mapped_column(String(63))
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChargeLine(Base):
    """One line of a visit: machine time, a start fee, material, a catalogue item, a discount.

    ``quantity_milli`` (thousandths) × ``unit_price_millicents`` gives ``amount_cents`` rounded
    half up; a discount is a negative line whose description is its reason.
    """

    __tablename__ = "charge_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("usage_sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # LINE_KINDS
    description: Mapped[str] = mapped_column(String(300))
    quantity_milli: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(20))
    unit_price_millicents: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(Integer)
    tariff_version_id: Mapped[int | None] = mapped_column(ForeignKey("tariff_versions.id"))
    catalogue_item_id: Mapped[int | None] = mapped_column(ForeignKey("catalogue_items.id"))
    material_id: Mapped[int | None] = mapped_column(ForeignKey("materials.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))

    visit: Mapped[Visit] = relationship(back_populates="lines")
    session: Mapped[UsageSession | None] = relationship(back_populates="lines")
    tariff_version: Mapped[TariffVersion | None] = relationship()

    @property
    def quantity(self) -> Decimal:
        return Decimal(self.quantity_milli) / THOUSAND

    @property
    def unit_price(self) -> Decimal:
        """Euros per unit, exact (may have more than two decimals: 0,025 €/g)."""
        return Decimal(self.unit_price_millicents) / Decimal(100_000)

    @property
    def amount(self) -> Decimal:
        return euros(self.amount_cents)


class FilamentCorrection(Base):
    """Filament an agent reported after the job had ended (``job_corrected``), once per run.

    ``state``: ``applied`` (added to the session, or charged on its open visit as ``line_id``),
    ``pending`` (the visit was closed: nothing charged, staff decide) or ``dealt`` (staff did).
    """

    __tablename__ = "filament_corrections"
    __table_args__ = (UniqueConstraint("session_id", "job_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("usage_sessions.id"), index=True)
    job_key: Mapped[str] = mapped_column(String(500))
    job: Mapped[str] = mapped_column(String(500))
    filament_mm_milli: Mapped[int] = mapped_column(BigInteger)  # what the run used, in all
    added_mm_milli: Mapped[int] = mapped_column(BigInteger)  # beyond what was already counted
    source: Mapped[str] = mapped_column(String(20))  # MATERIAL_SOURCES
    state: Mapped[str] = mapped_column(String(10), index=True)  # applied | pending | dealt
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"))
    line_id: Mapped[int | None] = mapped_column(ForeignKey("charge_lines.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dealt_by: Mapped[str | None] = mapped_column(String(80))
    dealt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    session: Mapped[UsageSession] = relationship()
    visit: Mapped[Visit | None] = relationship()

    @property
    def added_mm(self) -> Decimal:
        return Decimal(self.added_mm_milli) / THOUSAND


class InboxEvent(Base):
    """A usage event as committed: unique by (agent, stream, seq), so a duplicate changes nothing."""

    __tablename__ = "inbox_events"
    __table_args__ = (UniqueConstraint("agent", "stream", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent: Mapped[str] = mapped_column(String(63))
    stream: Mapped[str] = mapped_column(String(36))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(30))
    machine_id: Mapped[str] = mapped_column(String(63))
    session_id: Mapped[str] = mapped_column(String(36))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StreamPosition(Base):
    """How far an agent's stream is committed without a hole (``upto``), and the highest seen."""

    __tablename__ = "stream_positions"

    agent: Mapped[str] = mapped_column(String(63), primary_key=True)
    stream: Mapped[str] = mapped_column(String(36), primary_key=True)
    upto: Mapped[int] = mapped_column(Integer, default=0)
    highest: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RejectedMessage(Base):
    """A message that could not be used: its topic, raw bytes and why."""

    __tablename__ = "rejected_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(300))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


REJECTED_KEEP_BYTES = 4096  # of a refused payload, enough to see what it was; never the whole 64 kB
REJECTED_REASON_CHARS = 2000


def rejected(topic: str, payload: bytes, reason: str, at: datetime | None = None) -> RejectedMessage:
    """A rejected message as the ledger keeps it: topic, the first bytes of the payload, why."""
    return RejectedMessage(
        topic=topic[:300], payload=bytes(payload[:REJECTED_KEEP_BYTES]),
        reason=reason[:REJECTED_REASON_CHARS], at=at or utcnow(),
    )  # fmt: skip


class AuditEntry(Base):
    """Who did what, when: discounts, unlocks, tariff edits, closes."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str | None] = mapped_column(String(120))
    detail: Mapped[str | None] = mapped_column(Text)


class AllowlistGrant(Base):
    """One entry of an allow-list billing published: what an offline acceptance can be matched to.

    An agent reports an offline acceptance by the entry's digest; ``(agent, digest)`` finds which
    credential and visit billing had put on that agent's list, and until when.
    """

    __tablename__ = "allowlist_grants"
    __table_args__ = (Index("ix_allowlist_grants_agent_digest", "agent", "digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent: Mapped[str] = mapped_column(String(63))
    digest: Mapped[str] = mapped_column(String(128))
    salt: Mapped[str] = mapped_column(String(64))
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id"))
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    machines: Mapped[str] = mapped_column(Text)  # space-separated machine ids
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuthLockout(Base):
    """Wrong PINs at one terminal (a machine) in a row, and until when it ignores PINs."""

    __tablename__ = "auth_lockouts"

    terminal: Mapped[str] = mapped_column(String(63), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StaffUser(Base):
    """A person who runs the desk (staff) or also the settings (admin); Argon2id password hash."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10), default="staff")  # ROLES
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # every session carries the generation it was opened in; logout and a new password bump it,
    # which ends all of that user's sessions on the server, whatever cookies are still around
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class LoginThrottle(Base):
    """Failed staff logins per account (``user:alice``) or per address (``addr:192.0.2.7``)."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)



class WallLink(Base):
    """A read-only link to the live board for a wall screen: only the SHA-256 of its token is kept.

    Made and revoked by an admin (``dashboard.wall``); a revoked link stops working at once.
    """

    __tablename__ = "wall_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(80))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class QualificationGrant(Base):
    """A person's qualification: a customer's (kept across visits), or one visit's supervised session.

    Exactly one of ``customer_id`` and ``visit_id`` is set. ``expires_at`` None: no expiry.
    ``line_id`` is the sold training that granted it, if any. Revoked grants stay, with who and when.
    """

    __tablename__ = "qualification_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    qualification_id: Mapped[int] = mapped_column(ForeignKey("qualifications.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), index=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    granted_by: Mapped[str] = mapped_column(String(80))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    line_id: Mapped[int | None] = mapped_column(ForeignKey("charge_lines.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(80))

    qualification: Mapped[Qualification] = relationship()
    customer: Mapped[Customer | None] = relationship()
    visit: Mapped[Visit | None] = relationship()


class MachineService(Base):
    """Upkeep done on a machine (who, what, when); the counters since the previous one start again.

    The counters it closed are kept: busy seconds, jobs, filament in thousandths of a mm.
    """

    __tablename__ = "machine_services"

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    by: Mapped[str] = mapped_column(String(80))
    what: Mapped[str] = mapped_column(Text)
    busy_s: Mapped[int] = mapped_column(BigInteger, default=0)
    jobs: Mapped[int] = mapped_column(Integer, default=0)
    filament_mm_milli: Mapped[int] = mapped_column(BigInteger, default=0)
