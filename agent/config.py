"""The agent's configuration: one frozen dataclass built from a TOML file (see deploy/agent.example.toml).

    config = AgentConfig.from_file(Path("/etc/fabmeter/agent.toml"), environ=os.environ)
    config.machines[0].driver       # 'octoprint'

A missing or wrong setting raises ``ConfigError`` naming the setting and the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.connection import MqttConfig, read_mqtt
from broker.settings import ConfigError, Settings
from broker.topics import is_id

DRIVERS = ("octoprint", "moonraker", "marlin", "grbl", "gpio")
# printers bind a session to a job; relay machines (laser, CNC, sewing) to a badge
PRINTER_DRIVERS = ("octoprint", "moonraker", "marlin")
READER_KINDS = ("rdm6300", "keyboard", "keypad", "socket")

__all__ = ["AgentConfig", "ConfigError", "MachineConfig", "MqttConfig", "ReaderConfig"]


@dataclass(frozen=True)
class MachineConfig:
    """One machine beside this agent and how to read it (keys by driver, see the example file)."""

    id: str
    driver: str
    url: str | None = None  # octoprint, moonraker
    api_key: str | None = None  # octoprint (required), moonraker (optional)
    timeout_s: float = 5.0
    port: str | None = None  # marlin, grbl: serial device
    baudrate: int = 115200
    pin: str | None = None  # gpio: current sensor output
    on_s: float = 1.0  # gpio: the shortest burst of activity that counts
    off_s: float = 5.0  # gpio: idle once no activity for this long
    stretch_s: float = 0.0  # gpio: pulses closer than this are one steady activity
    simulate: tuple[float, float] | None = None  # gpio, demos only: (busy_s, idle_s) on a mock pin
    interlock_pin: str | None = None
    idle_timeout_s: float | None = None
    material: str | None = None

    @property
    def kind(self) -> str:
        return "printer" if self.driver in PRINTER_DRIVERS else "relay"


@dataclass(frozen=True)
class ReaderConfig:
    """A badge reader or keypad identifying people at ``machine``."""

    kind: str
    machine: str
    port: str | None = None  # rdm6300
    device: str | None = None  # keyboard (evdev event device)
    row_pins: tuple[str, ...] = ()  # keypad
    col_pins: tuple[str, ...] = ()
    socket: str | None = None  # socket (demos and trials): a Unix datagram socket


@dataclass(frozen=True)
class AgentConfig:
    agent_id: str
    mqtt: MqttConfig
    outbox_path: Path
    window: int = 50
    resend_after_s: float = 15.0
    poll_s: float = 1.0
    checkpoint_s: float = 45.0
    idle_timeout_s: float = 600.0
    auth_timeout_s: float = 3.0
    state_every_s: float = 10.0
    filament_wait_s: float = 30.0
    led_pin: str | None = None
    buzzer_pin: str | None = None
    machines: tuple[MachineConfig, ...] = ()
    readers: tuple[ReaderConfig, ...] = field(default=())

    @classmethod
    def from_file(cls, path: Path, environ: Mapping[str, str] = os.environ) -> AgentConfig:
        settings = Settings.load(Path(path), environ=environ, env_prefix="FABMETER_")
        config = from_settings(settings)
        settings.finish()
        return config

    def machine(self, machine_id: str) -> MachineConfig:
        return next(m for m in self.machines if m.id == machine_id)


def from_settings(s: Settings) -> AgentConfig:
    agent_id = s.text("agent_id")
    if not is_id(agent_id):
        raise s.error("agent_id", "must be 1-63 lowercase letters, digits and hyphens")
    outbox, agent = s.section("outbox"), s.section("agent")
    machines = tuple(_machine(m) for m in s.tables("machines"))
    _check_unique(s, machines)
    readers = tuple(_reader(r, {m.id for m in machines}) for r in s.tables("readers"))
    return AgentConfig(
        agent_id=agent_id,
        mqtt=read_mqtt(s.section("mqtt")),
        outbox_path=outbox.path_value("path", "fabmeter-agent.db"),
        window=outbox.integer("window", 50, minimum=1),
        resend_after_s=outbox.number("resend_after_s", 15.0, minimum=1),
        poll_s=agent.number("poll_s", 1.0, minimum=0.1),
        checkpoint_s=_between(agent, "checkpoint_s", 45.0, 30, 60),
        idle_timeout_s=agent.number("idle_timeout_s", 600.0, minimum=1),
        auth_timeout_s=agent.number("auth_timeout_s", 3.0, minimum=0.1),
        state_every_s=agent.number("state_every_s", 10.0, minimum=1),
        filament_wait_s=agent.number("filament_wait_s", 30.0, minimum=0),
        led_pin=agent.text("led_pin", None),
        buzzer_pin=agent.text("buzzer_pin", None),
        machines=machines,
        readers=readers,
    )


def _between(s: Settings, key: str, default: float, low: float, high: float) -> float:
    value: float = s.number(key, default)
    if not low <= value <= high:
        raise s.error(key, f"must be between {low} and {high} seconds, not {value}")
    return value


def _machine(s: Settings) -> MachineConfig:
    machine_id = s.text("id")
    if not is_id(machine_id):
        raise s.error("id", "must be 1-63 lowercase letters, digits and hyphens")
    driver = s.choice("driver", DRIVERS)
    common: dict[str, Any] = dict(
        id=machine_id,
        driver=driver,
        interlock_pin=s.text("interlock_pin", None),
        idle_timeout_s=s.number("idle_timeout_s", None, minimum=1),
        material=s.text("material", None),
    )
    if driver in ("octoprint", "moonraker"):
        required = driver == "octoprint"
        return MachineConfig(
            **common,
            url=s.text("url"),
            api_key=s.secret("api_key") if required else s.secret("api_key", None),
            timeout_s=s.number("timeout_s", 5.0, minimum=0.1),
        )
    if driver in ("marlin", "grbl"):
        return MachineConfig(
            **common, port=s.text("port"), baudrate=s.integer("baudrate", 115200, minimum=1200)
        )
    busy, idle = s.number("simulate_busy_s", None, minimum=1), s.number("simulate_idle_s", None, minimum=1)
    if (busy is None) != (idle is None):
        raise s.error("simulate_busy_s", "and simulate_idle_s go together")
    return MachineConfig(
        **common, pin=s.text("pin"), on_s=s.number("on_s", 1.0, minimum=0),
        off_s=s.number("off_s", 5.0, minimum=0), stretch_s=s.number("stretch_s", 0.0, minimum=0),
        simulate=(busy, idle) if busy is not None and idle is not None else None,
    )  # fmt: skip


def _check_unique(s: Settings, machines: tuple[MachineConfig, ...]) -> None:
    seen: set[str] = set()
    for i, machine in enumerate(machines):
        if machine.id in seen:
            raise s.error(f"machines[{i}].id", f"repeats machine id {machine.id!r}")
        seen.add(machine.id)


def _reader(s: Settings, machine_ids: set[str]) -> ReaderConfig:
    kind = s.choice("kind", READER_KINDS)
    machine = s.text("machine")
    if machine not in machine_ids:
        raise s.error("machine", f"names {machine!r}, which is not a configured machine id")
    if kind == "rdm6300":
        return ReaderConfig(kind, machine, port=s.text("port"))
    if kind == "keyboard":
        return ReaderConfig(kind, machine, device=s.text("device"))
    if kind == "socket":
        return ReaderConfig(kind, machine, socket=str(s.path_value("socket")))
    return ReaderConfig(kind, machine, row_pins=s.strings("row_pins"), col_pins=s.strings("col_pins"))
