"""Badges and PINs of visits, stored so that a copy of the database reveals neither.

    pin = issue_pin(db, pepper, visit)          # "482913", shown once at check-in
    bind_badge(db, pepper, visit, "0A1B2C3D")   # a loan badge
    find_pin(db, pepper, "482913")              # Credential of an open visit, or None

A badge UID is an identifier, not a secret: it is stored as HMAC(pepper, UID). A PIN is stored
as Argon2id of HMAC(pepper, PIN) — the pepper lives in a file outside the database. A few bits
of another HMAC (``bucket``) pick which Argon2 hashes to try, so a PIN check costs one or two
hashes, not one per open visit. For the allow-lists, which digest every credential afresh under
each list's own salt, the secret is also kept sealed (AES-GCM under a key derived from the
pepper, bound to the credential's kind): ``unseal`` gives it back to billing, and only with the
pepper.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.errors import InvalidOperation, NotFound
from billing.models import Credential, Visit

BUCKETS = 64
# OWASP's Argon2id baseline (19 MiB, 2 passes): ~20 ms, few checks per PIN thanks to buckets.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def _mac(pepper: str, text: str) -> bytes:
    return hmac.new(pepper.encode(), text.encode(), hashlib.sha256).digest()


def normalise_badge(uid: str) -> str:
    return uid.strip().upper()


def checked_badge_uid(uid: str) -> str:
    """A badge UID as typed or scanned at the desk, normalised, or ``InvalidOperation``.

    Hex digits, an even count of 8 to 20: a 4-, 7- or 10-byte ISO 14443 UID, or the 10 digits an
    RDM6300 125 kHz reader reports (see ``agent.readers.frame_uid``); spaces, ':' and '-' between
    the bytes are dropped ('04:A2:B3:C4').
    """
    compact = "".join(ch for ch in uid.strip() if ch not in " :-\t").upper()
    if not (8 <= len(compact) <= 20 and len(compact) % 2 == 0 and all(ch in "0123456789ABCDEF" for ch in compact)):
        raise InvalidOperation("not a badge UID: 8 to 20 hexadecimal digits, e.g. 0A1B2C3D")
    return compact


def badge_hash(pepper: str, uid: str) -> str:
    return _mac(pepper, "badge:" + normalise_badge(uid)).hex()


def pin_bucket(pepper: str, pin: str) -> int:
    return _mac(pepper, "bucket:" + pin)[0] % BUCKETS


def seal(pepper: str, kind: str, secret: str) -> str:
    """The secret encrypted for billing alone: hex of nonce + AES-GCM ciphertext."""
    nonce = secrets.token_bytes(12)
    return (nonce + AESGCM(_mac(pepper, "seal")).encrypt(nonce, secret.encode(), kind.encode())).hex()


def unseal(pepper: str, credential: Credential) -> str | None:
    """The credential's PIN or UID, or None if it has no sealed copy or the pepper changed."""
    if not credential.sealed_secret:
        return None
    try:
        raw = bytes.fromhex(credential.sealed_secret)
        return AESGCM(_mac(pepper, "seal")).decrypt(raw[:12], raw[12:], credential.kind.encode()).decode()
    except (ValueError, InvalidTag):
        return None


def _pin_mac(pepper: str, pin: str) -> str:
    return _mac(pepper, "pin:" + pin).hex()


def _pin_matches(credential: Credential, pepper: str, pin: str) -> bool:
    try:
        return HASHER.verify(credential.secret_hash, _pin_mac(pepper, pin))
    except (VerificationError, InvalidHashError):
        return False


def _active_pins(db: Session, bucket: int) -> list[Credential]:
    query = (
        select(Credential)
        .join(Visit)
        .where(Credential.kind == "pin", Credential.active, Credential.bucket == bucket)
        .where(Visit.state != "closed")
    )
    return list(db.scalars(query))


def find_pin(db: Session, pepper: str, pin: str) -> Credential | None:
    """The active PIN credential of a visit not yet closed that this PIN opens."""
    for credential in _active_pins(db, pin_bucket(pepper, pin)):
        if _pin_matches(credential, pepper, pin):
            return credential
    return None


def find_badge(db: Session, pepper: str, uid: str) -> Credential | None:
    """The newest credential ever bound to this badge (its visit may be closed: say so)."""
    query = (
        select(Credential)
        .where(Credential.kind == "badge", Credential.secret_hash == badge_hash(pepper, uid))
        .order_by(Credential.active.desc(), Credential.id.desc())
    )
    return db.scalars(query).first()


def issue_pin(db: Session, pepper: str, visit: Visit, digits: int = 6) -> str:
    """A fresh PIN for the visit, unlike any other open visit's; returned once, never stored."""
    for _ in range(50):
        pin = "".join(secrets.choice("0123456789") for _ in range(digits))
        if find_pin(db, pepper, pin) is None:
            break
    else:  # pragma: no cover - 50 collisions in a row means the PIN space is full
        raise InvalidOperation("no free %(digits)s-digit PIN: raise billing.pin_digits", digits=digits)
    db.add(
        Credential(
            visit=visit,
            kind="pin",
            secret_hash=HASHER.hash(_pin_mac(pepper, pin)),
            bucket=pin_bucket(pepper, pin),
            sealed_secret=seal(pepper, "pin", pin),
        )
    )
    return pin


def bind_badge(db: Session, pepper: str, visit: Visit, uid: str) -> Credential:
    """Bind a (loan) badge to the visit; refused while another open visit holds it."""
    uid = normalise_badge(uid)
    if not uid:
        raise InvalidOperation("the badge number is empty: scan or type it again")
    holder = find_badge(db, pepper, uid)
    if holder is not None and holder.active and holder.visit.state != "closed":
        if holder.visit_id == visit.id:
            return holder
        raise InvalidOperation("this badge is already bound to open visit %(visit)s", visit=holder.visit_id)
    credential = Credential(
        visit=visit,
        kind="badge",
        secret_hash=badge_hash(pepper, uid),
        sealed_secret=seal(pepper, "badge", uid),
    )
    db.add(credential)
    db.flush()
    return credential


def deactivate_visit_credentials(visit: Visit) -> None:
    for credential in visit.credentials:
        credential.active = False


def record_refusal(
    credential: Credential, now: datetime, *, failures: int, window_s: int
) -> bool:
    """Count a refusal of this credential; True when it just became locked."""
    window_open = credential.first_failure_at is not None and (
        now - credential.first_failure_at <= timedelta(seconds=window_s)
    )
    if not window_open:
        credential.first_failure_at = now
        credential.failures = 0
    credential.failures += 1
    if credential.failures >= failures and not credential.locked:
        credential.locked = True
        return True
    return False


def unlock_credential(db: Session, credential_id: int, actor: str) -> Credential:
    credential = db.get(Credential, credential_id)
    if credential is None:
        raise NotFound("no credential %(credential)s", credential=credential_id)
    credential.locked = False
    credential.failures = 0
    credential.first_failure_at = None
    audit(db, actor, "unlock_credential", f"credential {credential_id}", f"visit {credential.visit_id}")
    return credential


def locked_credentials(db: Session) -> list[Credential]:
    """Credentials of visits not yet closed that refusals locked: staff unlock them at the desk."""
    query = select(Credential).join(Visit).where(Credential.locked, Visit.state != "closed")
    return list(db.scalars(query.order_by(Credential.id)))
