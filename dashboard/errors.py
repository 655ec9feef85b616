"""Errors of the dashboard; each message says what to check."""

from __future__ import annotations


class DashboardError(Exception):
    """Base class of the dashboard's own errors."""


class SetupError(DashboardError, RuntimeError):
    """The dashboard cannot start: a missing setting or file, named in the message."""
