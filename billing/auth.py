"""Who may start a machine: answers to ``auth/req`` and the agents' offline allow-lists.

    decide(db, AuthRequest("pin", "482913", "laser-1", session), pepper=p, rules=cfg.billing)
    # AuthResponse(allow=True, reason='ok', visit='12', display_name='Visiteur 12',
    #              price_summary='0,50 €/min')
    allowlists(db, pepper=p, rules=cfg.billing)   # {'pi-laser': Allowlist(...), ...}

A badge must be bound to an open visit, a PIN must be an open visit's; the machine must have
a tariff for the visit's category, and be one of the asking agent's. Wrong PINs slow that
terminal down for a short, growing while (``billing.lockouts``); badges are never held up.
Refusals of a known credential (closed visit, machine not open to it) are counted on that
credential and lock it, and only it, until staff unlock it.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timedelta
from math import ceil

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.config import BillingConfig
from billing.credentials import allowlist_salt, find_badge, find_pin, record_refusal
from billing.lockouts import count_wrong_pin, pin_wait
from billing.models import Credential, Machine, Tariff, Visit, utcnow
from billing.tariffs import current_version, price_summary
from broker.messages import AllowEntry, Allowlist, AuthRequest, AuthResponse, encode


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


# -- allow-lists ---------------------------------------------------------------------------


def _allowed_machines(db: Session) -> dict[int, set[str]]:
    """Category id → machines with an active tariff."""
    allowed: dict[int, set[str]] = {}
    for category_id, machine_id in db.execute(select(Tariff.category_id, Tariff.machine_id).where(Tariff.active)):
        allowed.setdefault(category_id, set()).add(machine_id)
    return allowed


def _hourly_rates(db: Session, machines: list[Machine]) -> dict[str, int]:
    """The dearest hourly price per machine over every category, for the offline credit cap."""
    rates: dict[str, int] = {}
    for tariff in db.scalars(select(Tariff).where(Tariff.active)):
        version = current_version(db, tariff.machine_id, tariff.category_id)
        if version is not None and tariff.machine_id in {m.id for m in machines}:
            hourly = ceil(version.unit_price_cents * 3600 / version.unit_s) + version.start_fee_cents
            rates[tariff.machine_id] = max(rates.get(tariff.machine_id, 0), hourly)
    return rates


def allowlists(
    db: Session, *, pepper: str, rules: BillingConfig, agents: set[str] | None = None,
    now: datetime | None = None,
) -> dict[str, Allowlist]:  # fmt: skip
    """One allow-list per agent: the credentials of open visits allowed on its machines."""
    now = now or utcnow()
    machines = list(db.scalars(select(Machine).where(Machine.active, Machine.agent.is_not(None))))
    by_agent: dict[str, list[Machine]] = {}
    for machine in machines:
        by_agent.setdefault(str(machine.agent), []).append(machine)
    for agent in agents or set():
        by_agent.setdefault(agent, [])
    allowed = _allowed_machines(db)
    credentials = db.scalars(
        select(Credential).join(Visit).where(
            Credential.active, ~Credential.locked, Credential.offline_digest.is_not(None),
            Visit.state != "closed",
        ).order_by(Credential.id)
    ).all()  # fmt: skip
    result = {}
    for agent, own in by_agent.items():
        entries = []
        for credential in credentials:
            usable = sorted(allowed.get(credential.visit.category_id, set()) & {m.id for m in own})
            if usable:
                entries.append(_entry(credential, usable, rules))
        result[agent] = Allowlist(
            issued=int(now.timestamp()), salt=allowlist_salt(pepper),
            credit_cap_cents=rules.offline_credit_cap_cents, entries=tuple(entries),
            rates_cents_per_hour=_hourly_rates(db, own),
        )  # fmt: skip
    return result


def _entry(credential: Credential, machines: list[str], rules: BillingConfig) -> AllowEntry:
    expires = credential.visit.opened_at + timedelta(seconds=rules.allowlist_validity_s)
    return AllowEntry(
        credential=str(credential.offline_digest), kind=credential.kind,
        visit=str(credential.visit_id), expires=int(expires.timestamp()),
        display_name=credential.visit.label, machines=tuple(machines),
    )  # fmt: skip


def content_hash(allowlist: Allowlist) -> str:
    """What identifies a list's content: everything but its issue time."""
    body = encode(replace(allowlist, issued=0))
    return hashlib.sha256(body).hexdigest()


class AllowlistTracker:
    """Remembers what was last published per agent, so a list goes out only when it changes.

        for agent, allowlist in tracker.changed(allowlists(db, ...)).items(): publish(...)
    """

    def __init__(self) -> None:
        self._sent: dict[str, str] = {}

    def changed(self, lists: dict[str, Allowlist]) -> dict[str, Allowlist]:
        fresh = {a: lst for a, lst in lists.items() if self._sent.get(a) != content_hash(lst)}
        self._sent.update({a: content_hash(lst) for a, lst in fresh.items()})
        return fresh

    def forget(self) -> None:
        self._sent.clear()

