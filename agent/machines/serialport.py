"""Opening a machine's serial port once, with errors that say what to check.

    port = open_port("/dev/ttyUSB0", 115200)     # exclusive: no other program may talk to it
    link = SerialLink("/dev/ttyUSB0", 115200)    # opened on first use, then kept
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


class SerialLink:
    """A machine's serial port, opened on first use and then kept: opening resets most boards.

        link = SerialLink("/dev/ttyACM0", 115200)
        write(link.port(), link.url, b"?")
    """

    def __init__(self, url: str, baudrate: int) -> None:
        self.url = url
        self._baudrate = baudrate
        self._port: serial.SerialBase | None = None

    def port(self) -> serial.SerialBase:
        if self._port is None:
            self._port = open_port(self.url, self._baudrate)
        return self._port

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None


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
