"""Deciding about a credential alone, from the retained allow-list, while billing does not answer.

    verdict = offline_verdict(allowlist, Credential("pin", "482913", "laser-1"), now_s=..., synced=True, spent_cents=0)
    verdict.accepted, verdict.reason      # (True, 'on the allow-list')

A badge UID is an identifier, not a secret: the allow-list says which kinds billing accepts.
Naming a credential in the list costs one Argon2id hash (the list's salt and cost, about 0.1 to
0.3 s on a Pi Zero 2 W): compute it once per presentation and pass it on as ``digest``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from broker.messages import AllowEntry, Allowlist, list_digest


@dataclass(frozen=True)
class Credential:
    """A badge UID or a PIN presented at ``machine``. Its ``secret`` is never logged."""

    kind: str  # badge / pin
    secret: str
    machine: str

    def __repr__(self) -> str:
        return f"Credential(kind={self.kind!r}, machine={self.machine!r})"


@dataclass(frozen=True)
class OfflineVerdict:
    accepted: bool
    reason: str
    digest: str
    entry: AllowEntry | None = None
    code: str | None = None  # broker.messages.REFUSAL_CODES, on a refusal


def _refused(code: str, reason: str, digest: str, entry: AllowEntry | None = None) -> OfflineVerdict:
    return OfflineVerdict(False, reason, digest, entry, code)


def qualification_lacking(allowlist: Allowlist, entry: AllowEntry, machine: str, now_s: float,
                          synced: bool) -> str | None:  # fmt: skip
    """The refusal message when ``machine`` needs a qualification the entry does not hold (now)."""
    code = allowlist.requires.get(machine)
    if code is None:
        return None
    until = entry.qualified.get(code)
    if until is not None and not (synced and until <= now_s):  # without a synced clock expiry cannot be told
        return None
    return f"formation requise : {allowlist.qualification_names.get(code, code)}"


def offline_verdict(
    allowlist: Allowlist | None, cred: Credential, *, now_s: float, synced: bool, spent_cents: int,
    digest: str | None = None,
) -> OfflineVerdict:  # fmt: skip
    """Accept only a listed, unexpired entry for this machine, qualified for it if it needs that,
    while offline spending is under the cap."""
    if allowlist is None:
        return _refused("not_listed", "no allow-list received yet", "-")
    digest = digest or list_digest(allowlist, cred.kind, cred.secret)
    entry = next((e for e in allowlist.entries if e.credential == digest and e.kind == cred.kind), None)
    if entry is None:
        return _refused("not_listed", "not on the allow-list", digest)
    if synced and entry.expires <= now_s:  # without a synced clock expiry cannot be told
        return _refused("expired", "allow-list entry expired", digest, entry)
    if entry.machines and cred.machine not in entry.machines:
        return _refused("not_open", "not allowed on this machine", digest, entry)
    lacking = qualification_lacking(allowlist, entry, cred.machine, now_s, synced)
    if lacking is not None:
        return _refused("not_qualified", lacking, digest, entry)
    if spent_cents >= allowlist.credit_cap_cents:
        return _refused("credit_cap", "offline credit cap reached", digest, entry)
    return OfflineVerdict(True, "on the allow-list", digest, entry)


def offline_spending_cents(allowlist: Allowlist, seconds_by_machine: dict[str, float]) -> int:
    """Estimated cost of offline use: hours on each machine times its highest hourly rate."""
    rates = allowlist.rates_cents_per_hour
    return int(sum(seconds / 3600 * rates.get(machine, 0) for machine, seconds in seconds_by_machine.items()))


def holder(cred: Credential, key: bytes) -> str:
    """A local fingerprint of a credential, to recognise the same badge or PIN at badge-out."""
    return hmac.new(key, f"{cred.kind}:{cred.secret}".encode(), hashlib.sha256).hexdigest()
