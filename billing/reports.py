"""What the fablab earned and how its machines were used, over a period (for the dashboard).

    period = Period.month(2025, 3, tz)                  # [1 March, 1 April) in local time
    takings(db, period, by="machine", step="day")      # [Taking(bucket='2025-03-04', key='laser-1', cents=1240), ...]
    utilisation(db, period)                            # [Utilisation(machine='laser-1', busy_s=..., ratio=0.12)]
    materials_used(db, period)                         # filament grams and sheets sold
    export_lines(db, period)                           # rows for the accountant's CSV

Takings come from the documents issued in the period (receipts, invoices, minus credit notes),
grouped by the day or month of issue in the fablab's time zone; what is charged but on no
document yet is ``pending`` ("en cours"), shown apart. An invoice left to pay (and a credit
note that lowers what it owes) counts on the day its payment came, by its real method
(``billing.ledger.unpaid``). Lines that are not machine time or
material (catalogue items, discounts) fall under the machine key ``DESK``. Sums are done in Python over
integer cents so SQLite and PostgreSQL give the same answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.errors import InvalidOperation
from billing.ledger.chain import load
from billing.ledger.documents import Document
from billing.ledger.unpaid import paid_between
from billing.models import THOUSAND, Category, ChargeLine, Machine, Material, UsageSession, Visit
from billing.money import euros
from billing.payments import DUE

DIMENSIONS = ("machine", "category", "payment")
STEPS = ("day", "month")
DESK = "desk"  # items and discounts: sold at the desk, not on a machine


@dataclass(frozen=True)
class Period:
    """A half-open interval [start, end) of aware datetimes, named in the fablab's time zone."""

    start: datetime
    end: datetime
    tz: tzinfo

    @classmethod
    def days(cls, first: date, last: date, tz: tzinfo) -> Period:
        """From the start of ``first`` to the end of ``last`` (both included), local time."""
        if last < first:
            raise InvalidOperation("the period ends (%(last)s) before it starts (%(first)s)", last=last, first=first)
        start = datetime(first.year, first.month, first.day, tzinfo=tz)
        end = datetime(last.year, last.month, last.day, tzinfo=tz) + timedelta(days=1)
        return cls(start, end, tz)

    @classmethod
    def month(cls, year: int, month: int, tz: tzinfo) -> Period:
        first = date(year, month, 1)
        following = date(year + (month == 12), month % 12 + 1, 1)
        return cls.days(first, following - timedelta(days=1), tz)

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    def bucket(self, moment: datetime, step: str) -> str:
        local = moment.astimezone(self.tz)
        return f"{local:%Y-%m}" if step == "month" else f"{local:%Y-%m-%d}"


@dataclass(frozen=True)
class Taking:
    """Money taken in one bucket (a day or a month) for one key (machine, category or method)."""

    bucket: str
    key: str
    cents: int

    @property
    def amount(self) -> Decimal:
        return euros(self.cents)


@dataclass(frozen=True)
class Utilisation:
    """Busy time of a machine over the period's hours (sessions started in the period)."""

    machine: str
    name: str
    busy_s: int
    session_s: int
    sessions: int
    period_s: int

    @property
    def ratio(self) -> float:
        """Busy share of the period, 0..1 (a display figure, never money)."""
        return min(self.busy_s / self.period_s, 1.0) if self.period_s else 0.0


@dataclass(frozen=True)
class MaterialUse:
    """A material or catalogue item consumed: how much, in which unit, and what it brought."""

    code: str
    name: str
    quantity_milli: int
    unit: str
    cents: int

    @property
    def quantity(self) -> Decimal:
        return Decimal(self.quantity_milli) / THOUSAND

    @property
    def amount(self) -> Decimal:
        return euros(self.cents)


@dataclass(frozen=True)
class ExportLine:
    """One charge line of a closed visit, flat, for the CSV export."""

    closed_at: datetime
    visit: int
    document: str  # the receipt or invoice that holds the line ('' if none was issued)
    customer_ref: str
    category: str
    payment_method: str
    kind: str
    machine: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal


def _closed_lines(db: Session, period: Period) -> Iterable[tuple[ChargeLine, Visit, str | None]]:
    query = (
        select(ChargeLine, Visit, UsageSession.machine_id)
        .join(Visit, ChargeLine.visit_id == Visit.id)
        .outerjoin(UsageSession, ChargeLine.session_id == UsageSession.id)
        .where(Visit.state == "closed", Visit.closed_at >= period.start, Visit.closed_at < period.end)
        .order_by(Visit.closed_at, ChargeLine.id)
    )
    yield from db.execute(query)


def _key(dimension: str, visit: Visit, machine: str | None) -> str:
    if dimension == "machine":
        return machine or DESK
    if dimension == "category":
        return visit.category.code
    return visit.payment_method or "?"


def takings(db: Session, period: Period, *, by: str = "machine", step: str = "day") -> list[Taking]:
    """Money taken per (day or month, key), from the documents issued in the period, sorted.

    Receipts and invoices add, credit notes take back; a split payment counts each method for
    its part. Charge lines count only through the documents that hold them: a line added after
    a close changes nothing here (it is ``pending``). This is the one function the takings
    report reads: money from elsewhere (invoices paid later) is joined here.
    """
    if by not in DIMENSIONS:
        raise InvalidOperation("takings are grouped by one of %(choices)s, not %(by)r", choices=", ".join(DIMENSIONS), by=by)
    if step not in STEPS:
        raise InvalidOperation("takings are summed per %(choices)s, not %(step)r", choices=" or ".join(STEPS), step=step)
    query = (
        select(Document.issued_at, Document.total_cents, Document.content, Category.code)
        .outerjoin(Visit, Document.visit_id == Visit.id)
        .outerjoin(Category, Visit.category_id == Category.id)
        .where(Document.issued_at >= period.start, Document.issued_at < period.end)
    )  # fmt: skip
    sums: dict[tuple[str, str], int] = defaultdict(int)
    for issued_at, total_cents, text, category in db.execute(query):
        bucket = period.bucket(issued_at, step)
        content = load(text)
        if DUE in content["payments"]:
            continue  # left to pay: counted on the day the money came (_paid_later)
        for key, cents in _parts(by, content, total_cents, category):
            sums[(bucket, key)] += cents
    _paid_later(db, period, by, step, sums)
    return [Taking(bucket, name, cents) for (bucket, name), cents in sorted(sums.items())]


def _parts(by: str, content: dict[str, Any], total_cents: int, category: str | None) -> Iterable[tuple[str, int]]:
    """A document's money split by machine (its lines), by payment method, or whole by category."""
    if by == "payment":
        payments: dict[str, int] = content["payments"]
        return payments.items()
    if by == "machine":
        return ((line.get("machine") or DESK, line["amount_cents"]) for line in content["lines"])
    return [(category or "?", total_cents)]


def pending(db: Session) -> int:
    """Cents charged on visits that no document holds yet ("en cours"): not in the takings."""
    covered = select(Document.visit_id).where(Document.visit_id.is_not(None))
    query = select(func.coalesce(func.sum(ChargeLine.amount_cents), 0)).where(ChargeLine.visit_id.not_in(covered))
    return int(db.scalar(query) or 0)


def _paid_later(db: Session, period: Period, by: str, step: str, sums: dict[tuple[str, str], int]) -> None:
    """Invoices left to pay, on the day their payment came: by its method, or the invoice's own
    lines (from the document, never from charge lines) scaled to what was paid."""
    first, end = period.start.astimezone(period.tz).date(), period.end.astimezone(period.tz).date()
    for payment in paid_between(db, first, end):
        bucket = f"{payment.paid_on:%Y-%m}" if step == "month" else payment.paid_on.isoformat()
        if by == "payment":
            sums[(bucket, payment.method)] += payment.amount_cents
            continue
        document = payment.document
        category = db.scalar(select(Category.code).join(Visit, Visit.category_id == Category.id)
                             .where(Visit.id == document.visit_id))  # fmt: skip
        parts = list(_parts(by, load(document.content), document.total_cents, category))
        whole = sum(cents for _key, cents in parts)
        shares = [(key, cents * payment.amount_cents // whole if whole else 0) for key, cents in parts]
        if shares:  # what rounding left goes to the first part: the sums still add up to the payment
            key, cents = shares[0]
            shares[0] = (key, cents + payment.amount_cents - sum(c for _k, c in shares))
        for key, cents in shares:
            sums[(bucket, key)] += cents


def totals_by_key(rows: Iterable[Taking]) -> dict[str, int]:
    """Cents per key over every bucket, keys sorted."""
    sums: dict[str, int] = defaultdict(int)
    for row in rows:
        sums[row.key] += row.cents
    return dict(sorted(sums.items()))


def utilisation(db: Session, period: Period) -> list[Utilisation]:
    """Per active machine: busy and session seconds of sessions started in the period."""
    machines = list(db.scalars(select(Machine).where(Machine.active).order_by(Machine.id)))
    query = select(UsageSession.machine_id, UsageSession.busy_s, UsageSession.session_s).where(
        UsageSession.started_at >= period.start, UsageSession.started_at < period.end
    )  # fmt: skip
    busy: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for machine_id, busy_s, session_s in db.execute(query):
        totals = busy[machine_id]
        totals[0] += busy_s
        totals[1] += session_s
        totals[2] += 1
    rows = []
    for m in machines:
        busy_s, session_s, count = busy[m.id]
        rows.append(Utilisation(m.id, m.name, busy_s, session_s, count, period.seconds))
    return rows


def materials_used(db: Session, period: Period) -> list[MaterialUse]:
    """Material lines (grams) and catalogue items of visits closed in the period."""
    names = {m.id: (m.code, m.name) for m in db.scalars(select(Material))}
    query = (
        select(ChargeLine.kind, ChargeLine.material_id, ChargeLine.catalogue_item_id,
               ChargeLine.description, ChargeLine.unit, ChargeLine.quantity_milli,
               ChargeLine.amount_cents)
        .join(Visit, ChargeLine.visit_id == Visit.id)
        .where(Visit.state == "closed", Visit.closed_at >= period.start, Visit.closed_at < period.end,
               ChargeLine.kind.in_(("material", "item")))
    )  # fmt: skip
    sums: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for kind, material_id, item_id, description, unit, quantity_milli, cents in db.execute(query):
        if kind == "material" and material_id is not None:
            code, name = names.get(material_id, (str(material_id), "?"))
        elif kind == "item":
            code, name = f"item-{item_id}", description
        else:
            continue
        totals = sums[(code, name, unit)]
        totals[0] += quantity_milli
        totals[1] += cents
    return [MaterialUse(code, name, q, unit, c) for (code, name, unit), (q, c) in sorted(sums.items())]


def export_lines(db: Session, period: Period) -> list[ExportLine]:
    """Every line of every visit closed in the period, oldest first, with a pseudonymous customer."""
    documents = {visit: f"{series}-{number:06d}" for visit, series, number in db.execute(
        select(Document.visit_id, Document.series, Document.number)
        .join(Visit, Document.visit_id == Visit.id)
        .where(Document.credit_note_of.is_(None), Visit.closed_at >= period.start, Visit.closed_at < period.end)
    )}  # fmt: skip
    rows = []
    for line, visit, machine in _closed_lines(db, period):
        assert visit.closed_at is not None
        ref = visit.customer.ref if visit.customer is not None else f"V{visit.id}"
        rows.append(
            ExportLine(
                closed_at=visit.closed_at, visit=visit.id, document=documents.get(visit.id, ""),
                customer_ref=ref,
                category=visit.category.code, payment_method=visit.payment_method or "",
                kind=line.kind, machine=machine or DESK, description=line.description,
                quantity=line.quantity, unit=line.unit, unit_price=line.unit_price,
                amount=line.amount,
            )  # fmt: skip
        )
    return rows
