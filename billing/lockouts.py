"""Wrong PINs at a terminal slow that terminal down for a while; nothing waits for staff.

    pin_wait(db, "laser-1", now)             # None, or the moment PINs are heard again there
    count_wrong_pin(db, "laser-1", now, rules)
    lift(db, "laser-1", actor="alice")       # from the desk or ``fabmeter billing lift``

A wrong PIN names no credential, so it is counted where it was typed (the machine's keypad).
The first ``lockout_failures`` within ``lockout_window_s`` cost nothing; each further one makes
the terminal ignore PINs for ``backoff_s`` (2, 4, 8… seconds, at most ``backoff_max_s``). A
PIN sent while the terminal waits is refused without being tried or counted, and badges are
never held up: a stranger's guessing costs the rightful user at most one short wait. The count
forgets after ``lockout_window_s`` without a wrong PIN; a right PIN does not clear it (else one
valid PIN would reset a guesser's count).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.config import BillingConfig
from billing.models import AuthLockout


def backoff_s(failures: int, rules: BillingConfig) -> int:
    """How long a terminal ignores PINs after its ``failures``-th wrong one in a row."""
    beyond = failures - rules.lockout_failures
    if beyond <= 0:
        return 0
    return int(min(rules.backoff_base_s * 2 ** min(beyond - 1, 32), rules.backoff_max_s))


def pin_wait(db: Session, terminal: str, now: datetime) -> datetime | None:
    """Until when this terminal ignores PINs, or None."""
    lockout = db.get(AuthLockout, terminal)
    if lockout is None or lockout.blocked_until is None or lockout.blocked_until <= now:
        return None
    return lockout.blocked_until


def count_wrong_pin(db: Session, terminal: str, now: datetime, rules: BillingConfig) -> int:
    """One more wrong PIN at this terminal; how many seconds it now ignores PINs (0: none)."""
    lockout = db.get(AuthLockout, terminal) or AuthLockout(terminal=terminal, failures=0)
    db.add(lockout)
    last = lockout.last_failure_at
    if last is None or now - last > timedelta(seconds=rules.lockout_window_s):
        lockout.failures = 0
    lockout.failures += 1
    lockout.last_failure_at = now
    wait = backoff_s(lockout.failures, rules)
    lockout.blocked_until = now + timedelta(seconds=wait) if wait else None
    if lockout.failures == rules.lockout_failures + 1:
        audit(
            db,
            "billing",
            "terminal_slowed",
            f"terminal {terminal}",
            f"{lockout.failures} wrong PINs",
        )
    return wait


def lift(db: Session, terminal: str, *, actor: str) -> None:
    """Staff clear a terminal's wrong-PIN count and wait (audited)."""
    lockout = db.get(AuthLockout, terminal)
    detail = f"{lockout.failures} wrong PINs" if lockout is not None else "nothing counted"
    if lockout is not None:
        lockout.failures, lockout.last_failure_at, lockout.blocked_until = 0, None, None
    audit(db, actor, "lift_terminal", f"terminal {terminal}", detail)


def slowed_terminals(db: Session, now: datetime) -> dict[str, tuple[datetime, int]]:
    """Terminal → (PINs heard again at, wrong PINs counted) for every terminal waiting now."""
    rows = db.scalars(select(AuthLockout).where(AuthLockout.blocked_until > now))
    return {
        row.terminal: (row.blocked_until, row.failures)
        for row in rows
        if row.blocked_until is not None
    }
