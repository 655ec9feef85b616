"""The audit log: who did what, when (discounts, unlocks, tariff edits, closes).

    audit(db, "alice", "discount", "visit 12", "-2,00 €: volunteer")
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from billing.models import AuditEntry


def audit(db: Session, actor: str, action: str, subject: str | None, detail: str | None = None) -> None:
    db.add(AuditEntry(actor=actor, action=action, subject=subject, detail=detail))
