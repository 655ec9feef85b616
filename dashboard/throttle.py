"""Failed staff logins slow down the account and the address they came from.

    wait = login_wait(db, ("user:alice", "addr:192.0.2.7"), now)   # seconds to wait, 0: go on
    count_failure(db, ("user:alice", "addr:192.0.2.7"), now)
    forget(db, "user:alice")                                       # after a good password

The first ``FREE_FAILURES`` cost nothing; then each failure makes the key wait 1, 2, 4… seconds,
up to a minute for an account (so a stranger cannot keep a colleague out for long) and a quarter
of an hour for an address (200 guesses then take days, not 20 s). A key forgets after
``QUIET_S`` without a failure. While a key waits, the password is not even checked.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from math import ceil

from sqlalchemy.orm import Session

from billing.models import LoginThrottle

FREE_FAILURES = 5
QUIET_S = 900
MAX_WAIT_S = {"user": 60, "addr": 900}


def delay_s(key: str, failures: int) -> int:
    """How long ``key`` waits after its ``failures``-th failure in a row."""
    beyond = failures - FREE_FAILURES
    if beyond <= 0:
        return 0
    return int(min(2 ** min(beyond - 1, 32), MAX_WAIT_S[key.split(":", 1)[0]]))


def login_wait(db: Session, keys: tuple[str, ...], now: datetime) -> int:
    """Whole seconds until every key may try again (0: now)."""
    waits = [0]
    for key in keys:
        row = db.get(LoginThrottle, key)
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            waits.append(ceil((row.blocked_until - now).total_seconds()))
    return max(waits)


def count_failure(db: Session, keys: tuple[str, ...], now: datetime) -> None:
    for key in keys:
        row = db.get(LoginThrottle, key) or LoginThrottle(key=key, failures=0)
        db.add(row)
        if row.last_failure_at is None or now - row.last_failure_at > timedelta(seconds=QUIET_S):
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        wait = delay_s(key, row.failures)
        row.blocked_until = now + timedelta(seconds=wait) if wait else None


def forget(db: Session, key: str) -> None:
    row = db.get(LoginThrottle, key)
    if row is not None:
        db.delete(row)
