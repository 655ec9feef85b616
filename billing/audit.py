"""The audit log: who did what, when (discounts, unlocks, tariff edits, closes).

    audit(db, "alice", "discount", "visit 12", "-2,00 €: volunteer")

An action in ``CHAINED`` is also appended to the ledger's event log (``billing.ledger.events``),
hash-chained and sealed like the documents, so it cannot be removed or edited unseen.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from billing.models import AuditEntry, utcnow

CHAINED = frozenset({
    "close_day", "close_month", "close_year",  # closures
    "reprint", "issue_credit_note",  # duplicates and corrections
    "erase_customer", "erase_visit_name",  # erasures
    "ledger_key", "organisation",  # key and organisation changes
    "set_tariff", "save_machine", "save_material", "save_category", "save_item",  # prices
    "discount", "remove_line", "reduce_line",  # what a document will say
    "invoice_paid", "filament_correction_dealt",  # money that comes later
    "load_site", "define_qualification", "grant_qualification", "revoke_qualification",  # who may use what
    "out_of_service", "back_in_service", "record_service", "upkeep_thresholds",  # machines
    "make_wall_link", "revoke_wall_link",  # read-only access
    "login", "login_failed", "login_refused", "logout",  # staff
    "create_user", "set_password", "save_user",
})  # fmt: skip


def audit(
    db: Session, actor: str, action: str, subject: str | None, detail: str | None = None,
    now: datetime | None = None,
) -> None:
    db.add(AuditEntry(at=now or utcnow(), actor=actor, action=action, subject=subject, detail=detail))
    if action in CHAINED:
        from billing.ledger.events import append  # the ledger imports this module

        append(db, actor, action, subject, detail, now=now)
