"""Opening a machine's serial port once, with errors that say what to check.

    port = open_port("/dev/ttyUSB0", 115200)     # exclusive: no other program may talk to it
"""

from __future__ import annotations

import serial

from agent.errors import MachineUnreachable


def open_port(url: str, baudrate: int, timeout_s: float = 0.2) -> serial.SerialBase:
    """Open ``url`` (a device path or a pyserial URL) exclusively; opening resets most boards."""
    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout_s, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as err:
        raise MachineUnreachable(
            f"cannot open serial port {url}: {err} — is the machine plugged in, and no other program using it?"
        ) from err


def read_line(port: serial.SerialBase, url: str) -> str:
    """One line from the machine ('' when none came in time); garbage bytes become U+FFFD."""
    try:
        raw = port.readline()
    except (serial.SerialException, OSError) as err:
        raise MachineUnreachable(f"serial port {url} failed: {err} — was the cable pulled?") from err
    return bytes(raw).decode("ascii", errors="replace").strip()


def write(port: serial.SerialBase, url: str, data: bytes) -> None:
    try:
        port.write(data)
    except (serial.SerialException, OSError) as err:
        raise MachineUnreachable(f"serial port {url} failed: {err} — was the cable pulled?") from err
