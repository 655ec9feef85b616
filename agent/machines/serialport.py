"""A machine's serial port as a stream of lines: opened once, reopened with back-off when it fails.

    link = SerialLink("/dev/ttyUSB0", 115200)    # opened on first use, then kept
    stream = LineStream(link)
    stream.send(b"M105\\n")
    stream.line(until=time.monotonic() + 2)      # 'ok T:210.0 /210.0 B:60.0 /60.0' or None

A line split across two reads is one line; what came in while nobody asked is still there
(``pending()``) so a driver can tell stale input from its answer. Opening the port resets
most boards: it is opened once, and after a failure (cable pulled) only reopened after a
back-off that grows from 1 s to a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import serial

from agent.errors import MachineUnreachable

READ_SLICE_S = 0.05  # a read waits at most this long, so a poll's deadline is kept to ~50 ms
MAX_LINE = 4096  # a line longer than this is noise, not an answer


def open_port(url: str, baudrate: int, timeout_s: float = 0.2) -> serial.SerialBase:
    """Open ``url`` (a device path or a pyserial URL) exclusively; opening resets most boards."""
    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout_s, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as err:
        raise MachineUnreachable(
            f"cannot open serial port {url}: {err} — is the machine plugged in, and no other program using it?"
        ) from err


class SerialLink:
    """A machine's serial port, opened on first use and kept; after a failure, reopened with back-off.

        link = SerialLink("/dev/ttyACM0", 115200)
        link.port().write(b"?")     # MachineUnreachable while the back-off runs
    """

    def __init__(
        self, url: str, baudrate: int, *, clock: Callable[[], float] = time.monotonic,
        backoff_s: tuple[float, float] = (1.0, 60.0),
    ) -> None:  # fmt: skip
        self.url = url
        self._baudrate = baudrate
        self._clock = clock
        self._backoff = backoff_s
        self._wait_s = 0.0
        self._retry_at = 0.0
        self._port: serial.SerialBase | None = None
        self.opened = 0  # how many times the port was opened: each open may have reset the board

    def port(self) -> serial.SerialBase:
        if self._port is not None:
            return self._port
        if self._clock() < self._retry_at:
            raise MachineUnreachable(
                f"serial port {self.url} failed; next try in {self._retry_at - self._clock():.0f} s"
            )
        try:
            self._port = open_port(self.url, self._baudrate, READ_SLICE_S)
        except MachineUnreachable:
            self._back_off()
            raise
        self._wait_s, self.opened = 0.0, self.opened + 1
        return self._port

    def failed(self, err: Exception) -> MachineUnreachable:
        """Close a port that failed; the next ``port()`` reopens it once the back-off is over."""
        self.close()
        self._back_off()
        return MachineUnreachable(f"serial port {self.url} failed: {err} — was the cable pulled?")

    def _back_off(self) -> None:
        first, most = self._backoff
        self._wait_s = min(max(self._wait_s * 2, first), most)
        self._retry_at = self._clock() + self._wait_s

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except (serial.SerialException, OSError):
                pass  # a port whose device is gone cannot be closed cleanly; it is let go all the same
            self._port = None


class LineStream:
    """The lines a controller sends, assembled across reads, each read bounded by a deadline.

        stream = LineStream(SerialLink("/dev/ttyACM0", 115200))
        stream.pending()            # lines that came in since the last read, without waiting
    """

    def __init__(self, link: SerialLink, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.link = link
        self.url = link.url
        self._clock = clock
        self._buffer = b""
        self._lines: list[str] = []

    def send(self, data: bytes) -> None:
        port = self.link.port()
        try:
            port.write(data)
        except (serial.SerialException, OSError) as err:
            raise self.link.failed(err) from err

    def line(self, *, until: float) -> str | None:
        """The next complete line, waiting no later than ``until`` (a ``clock`` reading); None if none."""
        while not self._lines:
            remaining = until - self._clock()
            if remaining <= 0:
                return None
            self._read()
        return self._lines.pop(0)

    def pending(self) -> list[str]:
        """Every complete line already received, read without waiting for more."""
        port = self.link.port()
        try:
            waiting = port.in_waiting
        except (serial.SerialException, OSError) as err:
            raise self.link.failed(err) from err
        if waiting:
            self._read()
        lines, self._lines = self._lines, []
        return lines

    def _read(self) -> None:
        port = self.link.port()
        try:
            chunk = bytes(port.read(max(port.in_waiting, 1)))
        except (serial.SerialException, OSError) as err:
            raise self.link.failed(err) from err
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > MAX_LINE:
            self._buffer = b""
        for raw in complete:
            text = raw.decode("ascii", errors="replace").strip()
            if text:
                self._lines.append(text[:MAX_LINE])

    def forget(self) -> None:
        """Drop a partial line (after a reset nothing before it belongs to what follows)."""
        self._buffer = b""
