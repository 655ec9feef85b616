"""Errors of the machine agent: one base class, a few specific ones that say what to check."""

from __future__ import annotations


class AgentError(Exception):
    """Base class of every error raised by the agent package."""


class MachineUnreachable(AgentError, ConnectionError):
    """A machine (or its controller) did not answer or answered nonsense; the text says what to check."""


class ReaderError(AgentError, OSError):
    """A badge reader or keypad that cannot be opened or read."""


class OutboxError(AgentError, RuntimeError):
    """The outbox database cannot be opened or written."""
