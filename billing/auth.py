"""Who may start a machine: answers to ``auth/req`` and the agents' offline allow-lists.

    decide(db, AuthRequest("pin", "482913", "laser-1", session), pepper=p, rules=cfg.billing)
    # AuthResponse(allow=True, reason='ok', visit='12', display_name='Visiteur 12',
    #              price_summary='0,50 €/min')

A badge must be bound to an open visit, a PIN must be an open visit's; the machine must have
a tariff for the visit's category, and be one of the asking agent's. Wrong PINs slow that
terminal down for a short, growing while (``billing.lockouts``); badges are never held up.
Refusals of a known credential (closed visit, machine not open to it) are counted on that
credential and lock it, and only it, until staff unlock it.
"""

from __future__ import annotations

from datetime import datetime
from math import ceil

from sqlalchemy.orm import Session

from billing.audit import audit
from billing.config import BillingConfig
from billing.credentials import find_badge, find_pin, record_refusal
from billing.lockouts import count_wrong_pin, pin_wait
from billing.models import Credential, Machine, utcnow
from billing.tariffs import current_version, price_summary
from broker.messages import AuthRequest, AuthResponse


def _deny(request: AuthRequest, reason: str) -> AuthResponse:
    return AuthResponse(allow=False, reason=reason, session=request.session)


def _refuse(db: Session, credential: Credential, request: AuthRequest, reason: str,
            now: datetime, rules: BillingConfig) -> AuthResponse:  # fmt: skip
    if record_refusal(credential, now, failures=rules.lockout_failures, window_s=rules.lockout_window_s):
        audit(db, "billing", "credential_locked", f"credential {credential.id}", reason)
    return _deny(request, reason)


def decide(
    db: Session, request: AuthRequest, *, pepper: str, rules: BillingConfig, agent: str | None = None,
    now: datetime | None = None,
) -> AuthResponse:  # fmt: skip
    """Allow or refuse a credential presented at a machine of ``agent`` (the caller commits)."""
    now = now or utcnow()
    machine = db.get(Machine, request.machine)
    if machine is None or not machine.active:
        return _deny(request, f"unknown machine {request.machine}")
    if agent is not None and machine.agent not in (None, agent):
        return _deny(request, f"{request.machine} is not a machine of {agent}")
    found = (_pin(db, request, pepper=pepper, rules=rules, now=now) if request.kind == "pin"
             else find_badge(db, pepper, request.credential))  # fmt: skip
    if found is None:
        return _deny(request, "unknown badge: check in at the desk")
    if isinstance(found, AuthResponse):
        return found
    return _judge(db, found, machine, request, now, rules)


def _pin(db: Session, request: AuthRequest, *, pepper: str, rules: BillingConfig,
         now: datetime) -> Credential | AuthResponse:  # fmt: skip
    """The PIN's credential, or the refusal: while the terminal waits a PIN is not even tried."""
    waiting = pin_wait(db, request.machine, now)
    if waiting is not None:
        return _deny(
            request, f"too many wrong PINs: try again in {ceil((waiting - now).total_seconds())} s"
        )
    credential = find_pin(db, pepper, request.credential)
    if credential is not None:
        return credential
    wait = count_wrong_pin(db, request.machine, now, rules)
    return _deny(request, f"wrong PIN: try again in {wait} s" if wait else "wrong PIN")


def _judge(db: Session, credential: Credential, machine: Machine, request: AuthRequest,
           now: datetime, rules: BillingConfig) -> AuthResponse:  # fmt: skip
    visit = credential.visit
    if credential.locked:
        return _deny(request, "credential locked: ask staff")
    if not credential.active or visit.state == "closed":
        return _refuse(db, credential, request, "visit closed: check in at the desk", now, rules)
    version = current_version(db, machine.id, visit.category_id)
    if version is None:
        reason = f"{machine.name} is not open to {visit.category.name}"
        return _refuse(db, credential, request, reason, now, rules)
    return AuthResponse(
        allow=True, reason="ok", session=request.session, visit=str(visit.id),
        display_name=visit.label, price_summary=price_summary(version, machine.material),
    )  # fmt: skip
