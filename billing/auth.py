"""Who may start a machine: answers to ``auth/req`` and the agents' offline allow-lists.

    decide(db, AuthRequest("pin", "482913", "laser-1", session), pepper=p, rules=cfg.billing)
    # AuthResponse(allow=True, reason='ok', visit='12', display_name='Visiteur 12',
    #              price_summary='0,50 €/min')

A badge must be bound to an open visit, a PIN must be an open visit's; the machine must be in
service, have a tariff for the visit's category, be one of the asking agent's, and the visit's
person must hold the qualification it needs ("formation requise : découpe laser"). Every
refusal has a ``code`` (``broker.messages.REFUSAL_CODES``). Wrong PINs slow that
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
from billing.qualifications import missing, refusal_message
from billing.tariffs import current_version, price_summary
from broker.messages import AuthRequest, AuthResponse


def _deny(request: AuthRequest, code: str, reason: str) -> AuthResponse:
    return AuthResponse(allow=False, reason=reason, session=request.session, code=code)


def _refuse(db: Session, credential: Credential, request: AuthRequest, code: str, reason: str,
            now: datetime, rules: BillingConfig) -> AuthResponse:  # fmt: skip
    if record_refusal(credential, now, failures=rules.lockout_failures, window_s=rules.lockout_window_s):
        audit(db, "billing", "credential_locked", f"credential {credential.id}", reason)
    return _deny(request, code, reason)


def out_of_service_message(machine: Machine) -> str:
    return f"hors service : {machine.out_of_service_reason}"


def decide(
    db: Session, request: AuthRequest, *, pepper: str, rules: BillingConfig, agent: str | None = None,
    now: datetime | None = None,
) -> AuthResponse:  # fmt: skip
    """Allow or refuse a credential presented at a machine of ``agent`` (the caller commits)."""
    now = now or utcnow()
    machine = db.get(Machine, request.machine)
    if machine is None or not machine.active:
        return _deny(request, "unknown_machine", f"unknown machine {request.machine}")
    if agent is not None and machine.agent not in (None, agent):
        return _deny(request, "not_yours", f"{request.machine} is not a machine of {agent}")
    if machine.out_of_service_reason is not None:  # before the PIN: a refusal here costs no attempt
        return _deny(request, "out_of_service", out_of_service_message(machine))
    found = (_pin(db, request, pepper=pepper, rules=rules, now=now) if request.kind == "pin"
             else find_badge(db, pepper, request.credential))  # fmt: skip
    if found is None:
        return _deny(request, "unknown_credential", "unknown badge: check in at the desk")
    if isinstance(found, AuthResponse):
        return found
    return _judge(db, found, machine, request, now, rules)


def _pin(db: Session, request: AuthRequest, *, pepper: str, rules: BillingConfig,
         now: datetime) -> Credential | AuthResponse:  # fmt: skip
    """The PIN's credential, or the refusal: while the terminal waits a PIN is not even tried."""
    waiting = pin_wait(db, request.machine, now)
    if waiting is not None:
        return _deny(
            request, "pin_wait", f"too many wrong PINs: try again in {ceil((waiting - now).total_seconds())} s"
        )
    credential = find_pin(db, pepper, request.credential)
    if credential is not None:
        return credential
    wait = count_wrong_pin(db, request.machine, now, rules)
    return _deny(request, "wrong_pin", f"wrong PIN: try again in {wait} s" if wait else "wrong PIN")


def _judge(db: Session, credential: Credential, machine: Machine, request: AuthRequest,
           now: datetime, rules: BillingConfig) -> AuthResponse:  # fmt: skip
    visit = credential.visit
    if credential.locked:
        return _deny(request, "locked", "credential locked: ask staff")
    if not credential.active or visit.state == "closed":
        return _refuse(db, credential, request, "visit_closed", "visit closed: check in at the desk", now, rules)
    version = current_version(db, machine.id, visit.category_id)
    if version is None:
        reason = f"{machine.name} is not open to {visit.category.name}"
        return _refuse(db, credential, request, "not_open", reason, now, rules)
    lacking = missing(db, machine, visit, now)
    if lacking is not None:  # not counted towards a lockout: the person is known, just not trained
        return _deny(request, "not_qualified", refusal_message(lacking))
    return AuthResponse(
        allow=True, reason="ok", session=request.session, visit=str(visit.id),
        display_name=visit.label, price_summary=price_summary(version, machine.material),
    )  # fmt: skip
