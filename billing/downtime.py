"""Machines out of service: staff take one out with a reason, and put it back; both are audited.

    take_out(db, "laser-1", "tube à changer", actor="alice")
    put_back(db, "laser-1", actor="alice")
    order(machine)        # ServiceOrder(machine='laser-1', out_of_service=True, reason='tube…', since=…)

The ledger is where it is decided; billing publishes each machine's order retained on
``machine/<id>/service`` and the agent refuses new sessions and releases the interlock at the
machine's next idle (a running job is never cut).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from billing.audit import audit
from billing.errors import InvalidOperation, NotFound
from billing.models import Machine, utcnow
from broker.messages import ServiceOrder


def _machine(db: Session, machine_id: str) -> Machine:
    machine = db.get(Machine, machine_id)
    if machine is None:
        raise NotFound("no machine %(machine)s", machine=machine_id)
    return machine


def take_out(db: Session, machine_id: str, reason: str, *, actor: str, now: datetime | None = None) -> Machine:
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidOperation("say why the machine is out of service (e.g. « tube à changer »)")
    if len(reason) > 300:
        raise InvalidOperation("the reason is longer than 300 characters")
    machine = _machine(db, machine_id)
    machine.out_of_service_reason = reason
    machine.out_of_service_since = machine.out_of_service_since or now or utcnow()
    audit(db, actor, "out_of_service", f"machine {machine_id}", reason)
    db.flush()
    return machine


def put_back(db: Session, machine_id: str, *, actor: str) -> Machine:
    machine = _machine(db, machine_id)
    if machine.out_of_service_reason is None:
        return machine
    audit(db, actor, "back_in_service", f"machine {machine_id}", f"was out: {machine.out_of_service_reason}")
    machine.out_of_service_reason = machine.out_of_service_since = None
    db.flush()
    return machine


def order(machine: Machine) -> ServiceOrder:
    """The retained order billing publishes for the machine's agent."""
    since = machine.out_of_service_since
    return ServiceOrder(machine=machine.id, out_of_service=machine.out_of_service_reason is not None,
                        reason=machine.out_of_service_reason or "", since=int(since.timestamp()) if since else 0)  # fmt: skip
