"""Errors of the wire contract and of broker configuration."""


class BrokerError(Exception):
    """Base class of every error raised by the broker package."""


class BadMessage(BrokerError, ValueError):
    """A payload or topic that is not a valid fabmeter v1 message; the text says what is wrong."""


class RegistryError(BrokerError, ValueError):
    """A site registry file that cannot be turned into a broker configuration."""
