"""Staff accounts: Argon2id passwords, roles staff/admin, and the user object Flask-Login keeps.

    create_user(db, "alice", "correct horse", role="admin", actor="setup"); db.commit()
    user = authenticate(db, "alice", "correct horse")     # StaffLogin or None
    end_sessions(db, user_row, actor="alice")             # every session of alice ends

Flask-Login keeps ``StaffLogin.get_id()`` — ``"<id>:<generation>"`` — in the session; ``load``
accepts it only while the user's ``session_generation`` in the database is still that one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.errors import InvalidOperation
from billing.models import ROLES, StaffUser

HASHER = PasswordHasher()  # argon2-cffi's default is Argon2id (RFC 9106 low-memory profile)
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
MIN_PASSWORD = 10
# A fixed hash to verify against when the user does not exist, so both cases take as long.
_DUMMY = HASHER.hash("no such user, but spend the same time")


@dataclass(frozen=True)
class StaffLogin:
    """The logged-in person as Flask-Login sees it (no password hash inside)."""

    id: int
    username: str
    role: str
    generation: int = 0

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id}:{self.generation}"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def of(cls, user: StaffUser) -> StaffLogin:
        return cls(user.id, user.username, user.role, user.session_generation)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidOperation("a password needs at least %(count)s characters", count=MIN_PASSWORD)


def create_user(db: Session, username: str, password: str, *, role: str, actor: str) -> StaffUser:
    """A new active staff user; refuses a taken or malformed username and a short password."""
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise InvalidOperation(
            "a username is 2-40 lowercase letters, digits, dots, dashes or underscores"
        )
    if role not in ROLES:
        raise InvalidOperation("role must be one of %(roles)s, not %(role)r", roles=", ".join(ROLES), role=role)
    check_password(password)
    if db.scalars(select(StaffUser).where(StaffUser.username == username)).first() is not None:
        raise InvalidOperation("the username %(username)r is taken", username=username)
    user = StaffUser(username=username, password_hash=HASHER.hash(password), role=role)
    db.add(user)
    audit(db, actor, "create_user", f"user {username}", f"role {role}")
    db.flush()
    return user


def set_password(db: Session, user: StaffUser, password: str, *, actor: str) -> None:
    """A new password; every session the user had open ends."""
    check_password(password)
    user.password_hash = HASHER.hash(password)
    user.session_generation += 1
    audit(db, actor, "set_password", f"user {user.username}", "all sessions ended")


def end_sessions(db: Session, user_id: int, *, actor: str, reason: str = "logout") -> None:
    """End every session of this user, on every browser (the caller commits)."""
    user = db.get(StaffUser, user_id)
    if user is not None:
        user.session_generation += 1
        audit(db, actor, reason, f"user {user.username}", "all sessions ended")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(db: Session, username: str, password: str) -> StaffLogin | None:
    """The active user with this username and password, else None (same cost either way)."""
    query = select(StaffUser).where(StaffUser.username == username.strip().lower())
    user = db.scalars(query).first()
    if user is None or not user.active:
        _verify(_DUMMY, password)
        return None
    if not _verify(user.password_hash, password):
        return None
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = HASHER.hash(password)
        db.commit()
    return StaffLogin.of(user)


def load(db: Session, session_id: str) -> StaffLogin | None:
    """The session's user while active and the session's generation is still current."""
    user_id, _, generation = session_id.partition(":")
    if not user_id.isdigit() or not generation.isdigit():
        return None  # also a cookie from before sessions had generations
    user = db.get(StaffUser, int(user_id))
    if user is None or not user.active or user.session_generation != int(generation):
        return None
    return StaffLogin.of(user)
