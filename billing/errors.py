"""Errors of the billing service; each message says what to check."""

from __future__ import annotations


class BillingError(Exception):
    """Base class of every error raised by the billing package."""


class NotFound(BillingError, LookupError):
    """A visit, machine, item or credential that does not exist."""


class InvalidOperation(BillingError, ValueError):
    """An operation that the ledger's rules refuse (closing a closed visit, a discount with no reason…)."""


class DatabaseError(BillingError, RuntimeError):
    """The database cannot be reached or migrated; the message names the URL (without password)."""


class NotYours(BillingError, ValueError):
    """A message about a machine or a session that belongs to another agent, or whose topic and
    payload name different things; recorded among rejected messages."""
