"""What each agent may accept while billing does not answer: planned cheaply, digested afresh.

    wanted = plans(db, rules=cfg.billing)                     # {'pi-laser': Plan(...), ...}
    for agent, plan in tracker.changed(wanted).items():
        allowlist = build(db, plan, pepper=p, rules=cfg.billing)  # fresh salt, records grants
        publish(topics.allowlist(agent), encode(allowlist))
    held_entry(db, "pi-laser", digest)                        # the grant an offline acceptance names

A list holds only credentials of visits open now, unexpired, allowed on that agent's machines;
no names. It says which qualification each machine needs (``requires``) and which ones each
entry's person holds, until when (``qualified``), so an offline refusal is the online one. Every list gets a fresh random salt and Argon2id digests (``allowlist_time_cost``
passes over ``allowlist_memory_kib``, tuned so a Pi Zero 2 W checks a PIN in well under 0.3 s;
see ``bench/allowlist.py``): a table of all 10^6 PINs built for one list is worth nothing for
the next one. Building costs one hash per entry, so it runs only when a plan changes, and off
the thread that answers auth requests.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.config import BillingConfig
from billing.credentials import unseal
from billing.models import AllowlistGrant, Credential, Machine, Qualification, Tariff, Visit, utcnow
from billing.qualifications import held
from billing.tariffs import current_version
from broker.messages import AllowEntry, Allowlist, credential_digest


@dataclass(frozen=True)
class Planned:
    """One credential an agent's list should carry, before it is digested."""

    credential_id: int
    kind: str
    visit: int
    expires: int  # unix seconds
    machines: tuple[str, ...]
    qualified: tuple[tuple[str, int], ...] = ()  # qualification code, until (unix seconds)


@dataclass(frozen=True)
class Plan:
    """An agent's list as billing wants it; equal plans need no new list."""

    credit_cap_cents: int
    rates_cents_per_hour: tuple[tuple[str, int], ...]
    entries: tuple[Planned, ...]
    requires: tuple[tuple[str, str], ...] = ()  # machine, qualification code
    names: tuple[tuple[str, str], ...] = ()  # qualification code, name


def _allowed_machines(db: Session) -> dict[int, set[str]]:
    """Category id → machines with an active tariff."""
    allowed: dict[int, set[str]] = {}
    for category_id, machine_id in db.execute(select(Tariff.category_id, Tariff.machine_id).where(Tariff.active)):
        allowed.setdefault(category_id, set()).add(machine_id)
    return allowed


def _hourly_rates(db: Session, machines: set[str]) -> tuple[tuple[str, int], ...]:
    """The dearest hourly price per machine over every category, for the offline credit cap."""
    rates: dict[str, int] = {}
    for tariff in db.scalars(select(Tariff).where(Tariff.active, Tariff.machine_id.in_(machines))):
        version = current_version(db, tariff.machine_id, tariff.category_id)
        if version is not None:
            hourly = ceil(version.unit_price_cents * 3600 / version.unit_s) + version.start_fee_cents
            rates[tariff.machine_id] = max(rates.get(tariff.machine_id, 0), hourly)
    return tuple(sorted(rates.items()))


def _usable_credentials(db: Session, rules: BillingConfig, now: datetime) -> list[tuple[Credential, int]]:
    """Active, unlocked, sealed credentials of visits open now, with their expiry, unexpired."""
    query = select(Credential).join(Visit).where(
        Credential.active, ~Credential.locked, Credential.sealed_secret.is_not(None), Visit.state == "open",
    ).order_by(Credential.id)  # fmt: skip
    found = []
    for credential in db.scalars(query):
        expires = credential.visit.opened_at + timedelta(seconds=rules.allowlist_validity_s)
        if expires > now:
            found.append((credential, int(expires.timestamp())))
    return found


def plans(
    db: Session, *, rules: BillingConfig, agents: set[str] | None = None, now: datetime | None = None
) -> dict[str, Plan]:
    """One plan per agent that has machines (or is named in ``agents``)."""
    now = now or utcnow()
    by_agent: dict[str, set[str]] = {agent: set() for agent in agents or set()}
    for machine in db.scalars(select(Machine).where(Machine.active, Machine.agent.is_not(None))):
        by_agent.setdefault(str(machine.agent), set()).add(machine.id)
    allowed = _allowed_machines(db)
    usable = _usable_credentials(db, rules, now)
    needs = _requirements(db)
    held_by_visit = {visit.id: held(db, visit, now) for visit in {c.visit for c, _ in usable}}
    result = {}
    for agent, own in by_agent.items():
        requires = {m: needs[m] for m in own if m in needs}
        entries = []
        for credential, expires in usable:
            machines = tuple(sorted(allowed.get(credential.visit.category_id, set()) & own))
            if machines:
                qualified = _qualified(held_by_visit[credential.visit_id], requires, expires)
                entries.append(Planned(credential.id, credential.kind, credential.visit_id, expires, machines, qualified))
        result[agent] = Plan(
            rules.offline_credit_cap_cents, _hourly_rates(db, own), tuple(entries),
            tuple(sorted((m, q.code) for m, q in requires.items())),
            tuple(sorted({(q.code, q.name) for q in requires.values()})),
        )  # fmt: skip
    return result


def _requirements(db: Session) -> dict[str, Qualification]:
    """Machine → the active qualification it needs."""
    query = select(Machine).where(Machine.active, Machine.qualification_id.is_not(None))
    return {m.id: m.qualification for m in db.scalars(query) if m.qualification and m.qualification.active}


def _qualified(held_now: dict[int, datetime | None], requires: dict[str, Qualification],
               expires: int) -> tuple[tuple[str, int], ...]:  # fmt: skip
    """The qualifications this agent's machines need that the entry's person holds, and until when."""
    found = {}
    for qualification in requires.values():
        if qualification.id in held_now:
            until = held_now[qualification.id]
            found[qualification.code] = expires if until is None else min(expires, int(until.timestamp()))
    return tuple(sorted(found.items()))


def build(
    db: Session, agent: str, plan: Plan, *, pepper: str, rules: BillingConfig, now: datetime | None = None
) -> Allowlist:
    """The list for ``plan`` under a fresh salt; records each entry as a grant (the caller commits)."""
    now = now or utcnow()
    salt = secrets.token_hex(16)
    entries = []
    for planned in plan.entries:
        credential = db.get(Credential, planned.credential_id)
        secret = unseal(pepper, credential) if credential is not None else None
        if secret is None:
            continue  # sealed under another pepper: online only
        digest = credential_digest(planned.kind, secret, salt, time_cost=rules.allowlist_time_cost,
                                   memory_kib=rules.allowlist_memory_kib)  # fmt: skip
        entries.append(AllowEntry(credential=digest, kind=planned.kind, visit=str(planned.visit),
                                  expires=planned.expires, machines=planned.machines,
                                  qualified=dict(planned.qualified)))  # fmt: skip
        db.add(AllowlistGrant(
            agent=agent, digest=digest, salt=salt, credential_id=planned.credential_id, visit_id=planned.visit,
            machines=" ".join(planned.machines), expires_at=datetime.fromtimestamp(planned.expires, now.tzinfo),
            issued_at=now,
        ))  # fmt: skip
    return Allowlist(
        issued=int(now.timestamp()), salt=salt, credit_cap_cents=plan.credit_cap_cents, entries=tuple(entries),
        rates_cents_per_hour=dict(plan.rates_cents_per_hour), time_cost=rules.allowlist_time_cost,
        memory_kib=rules.allowlist_memory_kib, requires=dict(plan.requires), qualification_names=dict(plan.names),
    )  # fmt: skip


def held_entry(db: Session, agent: str, digest: str) -> AllowlistGrant | None:
    """The entry billing put on ``agent``'s list under this digest (newest first), if any."""
    query = select(AllowlistGrant).where(AllowlistGrant.agent == agent, AllowlistGrant.digest == digest)
    return db.scalars(query.order_by(AllowlistGrant.id.desc())).first()


class AllowlistTracker:
    """Remembers the plan last published per agent, so a list is rebuilt only when it changes.

        for agent, plan in tracker.changed(plans(db, ...)).items(): publish(build(db, agent, plan, ...))
    """

    def __init__(self) -> None:
        self._sent: dict[str, Plan] = {}

    def changed(self, wanted: dict[str, Plan]) -> dict[str, Plan]:
        fresh = {agent: plan for agent, plan in wanted.items() if self._sent.get(agent) != plan}
        self._sent.update(fresh)
        return fresh

    def forget(self, agent: str | None = None) -> None:
        if agent is None:
            self._sent.clear()
        else:
            self._sent.pop(agent, None)
