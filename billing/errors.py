"""Errors of the billing service; each message says what to check."""

from __future__ import annotations


class BillingError(Exception):
    """Base class of every error raised by the billing package.

        raise InvalidOperation("visit %(visit)s is closed", visit=12)   # str(err): 'visit 12 is closed'

    ``template`` and ``params`` stay on the error so that a page can show it translated
    (the dashboard's French catalogue has each template as a msgid).
    """

    def __init__(self, template: str = "", **params: object) -> None:
        self.template, self.params = template, params
        super().__init__(template % params if params else template)


class NotFound(BillingError, LookupError):
    """A visit, machine, item or credential that does not exist."""


class InvalidOperation(BillingError, ValueError):
    """An operation that the ledger's rules refuse (closing a closed visit, a discount with no reason…)."""


class DatabaseError(BillingError, RuntimeError):
    """The database cannot be reached or migrated; the message names the URL (without password)."""


class NotYours(BillingError, ValueError):
    """A message about a machine or a session that belongs to another agent, or whose topic and
    payload name different things; recorded among rejected messages."""
