"""Machine drivers: each a small device object with ``poll() -> MachineSnapshot``.

    driver = build(config.machine("printer-1"))
    driver.poll()          # MachineSnapshot(machine='printer-1', state='printing', ...)

A driver reports what it sees and raises ``MachineUnreachable`` when it cannot; the main loop
decides what that means.
"""

from __future__ import annotations

from typing import Any, Protocol

from agent.config import MachineConfig
from agent.snapshot import MachineSnapshot


class Driver(Protocol):
    machine: str

    def poll(self) -> MachineSnapshot: ...

    def close(self) -> None: ...


def build(config: MachineConfig, *, pin_factory: Any = None, memory: Any = None) -> Driver:
    """The driver named by ``config.driver``, with production edges (HTTP, serial, pins); ``memory``
    (the outbox) keeps what a driver must remember across an agent restart."""
    if config.driver == "octoprint":
        from agent.machines.octoprint import OctoPrint

        return OctoPrint(config.id, url=config.url or "", api_key=config.api_key or "", timeout_s=config.timeout_s,
                         memory=memory)  # fmt: skip
    if config.driver == "moonraker":
        from agent.machines.moonraker import Moonraker

        return Moonraker(config.id, url=config.url or "", api_key=config.api_key, timeout_s=config.timeout_s,
                         memory=memory)  # fmt: skip
    if config.driver == "marlin":
        from agent.machines.marlin import Marlin

        return Marlin(config.id, port=config.port or "", baudrate=config.baudrate, memory=memory)
    if config.driver == "grbl":
        from agent.machines.grbl import Grbl

        return Grbl(config.id, port=config.port or "", baudrate=config.baudrate)
    from agent.machines.gpio import CurrentSense

    sense = CurrentSense(config.id, pin=config.pin or "", on_s=config.on_s, off_s=config.off_s,
                         stretch_s=config.stretch_s, pin_factory=pin_factory)  # fmt: skip
    if config.simulate:
        from agent.sim.current import CurrentCycle

        CurrentCycle(sense.pin, *config.simulate).start()
    return sense
