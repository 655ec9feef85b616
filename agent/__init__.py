"""The machine agent: runs on a Raspberry Pi beside machines, meters their use, never loses an event."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fabmeter")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
