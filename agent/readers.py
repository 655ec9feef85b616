"""Who is at the machine: badge readers and a PIN keypad, each handing ``Credential``s to a sink.

    reader = Rdm6300Reader("/dev/serial0", machine="laser-1", sink=queue.put)
    reader.start()           # a thread: one Credential per card presented (repeats while held are dropped)

Secrets (PINs, badge UIDs) are never logged.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.auth import Credential
from agent.errors import MachineUnreachable, ReaderError
from agent.machines.serialport import open_port

log = logging.getLogger(__name__)

Sink = Callable[[Credential], None]
STX, ETX, FRAME = 0x02, 0x03, 14


class Rdm6300Parser:
    """Frames ``0x02`` + 10 hex (version + tag) + 2 hex XOR checksum + ``0x03`` out of a byte stream."""

    def __init__(self) -> None:
        self._buffer = b""
        self.rejected = 0

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        found: list[str] = []
        while True:
            start = self._buffer.find(bytes([STX]))
            if start < 0:
                self._buffer = b""
                return found
            self._buffer = self._buffer[start:]
            if len(self._buffer) < FRAME:
                return found
            frame, uid = self._buffer[:FRAME], frame_uid(self._buffer[:FRAME])
            if uid is None:
                self.rejected += 1
                self._buffer = self._buffer[1:]  # resynchronise on the next STX
                continue
            found.append(uid)
            self._buffer = self._buffer[len(frame):]


def frame_uid(frame: bytes) -> str | None:
    """The card's 10 hex digits, or None for a frame with a bad end byte, digits or checksum."""
    if len(frame) != FRAME or frame[0] != STX or frame[-1] != ETX:
        return None
    try:
        text = frame[1:13].decode("ascii")
        values = bytes.fromhex(text)
    except (UnicodeDecodeError, ValueError):
        return None
    checksum = 0
    for byte in values[:5]:
        checksum ^= byte
    return text[:10].upper() if checksum == values[5] else None


class Deduper:
    """Drops a credential repeated within ``window_s`` of its last sighting (a card held on the reader)."""

    def __init__(self, window_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s, self._clock = window_s, clock
        self._last: dict[str, float] = {}

    def fresh(self, value: str) -> bool:
        now = self._clock()
        last = self._last.get(value)
        self._last[value] = now
        return last is None or now - last > self.window_s


class _ReaderThread:
    """A daemon thread running ``_run`` until ``stop()``; errors are logged, the thread retries."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def _guarded(self) -> None:
        while not self._stop.is_set():
            try:
                self._run()
            except (ReaderError, MachineUnreachable, OSError) as err:
                log.warning("%s: %s; trying again in 5 s", self._thread.name, err)
                self._stop.wait(5)

    def _run(self) -> None:
        raise NotImplementedError


class Rdm6300Reader(_ReaderThread):
    """An RDM6300-style 125 kHz reader on a UART (9600 baud)."""

    def __init__(self, port: str, *, machine: str, sink: Sink, dedupe_s: float = 2.0) -> None:
        super().__init__(f"rdm6300 {port}")
        self.port, self.machine, self._sink = port, machine, sink
        self._dedupe = Deduper(dedupe_s)

    def _run(self) -> None:
        serial_port = open_port(self.port, 9600, timeout_s=0.2)
        parser = Rdm6300Parser()
        try:
            while not self._stop.is_set():
                for uid in parser.feed(bytes(serial_port.read(64))):
                    if self._dedupe.fresh(uid):
                        self._sink(Credential("badge", uid, self.machine))
        finally:
            serial_port.close()


KEYPAD = ("123", "456", "789", "*0#")


class MatrixKeypad(_ReaderThread):
    """A 4x3 matrix keypad on GPIO pins: digits, ``#`` sends the PIN, ``*`` clears.

    Rows are outputs driven low one at a time; columns are inputs with pull-ups, so a pressed
    key reads low on its column while its row is driven.
    """

    def __init__(
        self, row_pins: Any, col_pins: Any, *, machine: str, sink: Sink, pin_factory: Any = None,
        layout: tuple[str, ...] = KEYPAD, scan_s: float = 0.02, min_digits: int = 4,
    ) -> None:  # fmt: skip
        from gpiozero import DigitalInputDevice, OutputDevice

        super().__init__(f"keypad {machine}")
        self.machine, self._sink, self._layout = machine, sink, layout
        self._rows = [OutputDevice(p, active_high=False, initial_value=False, pin_factory=pin_factory) for p in row_pins]
        self._cols = [DigitalInputDevice(p, pull_up=True, pin_factory=pin_factory) for p in col_pins]
        self._scan_s, self._min_digits = scan_s, min_digits
        self._held: set[str] = set()
        self._typed = ""

    def scan(self) -> set[str]:
        """The keys pressed right now."""
        pressed: set[str] = set()
        for r, row in enumerate(self._rows):
            row.on()
            pressed |= {self._layout[r][c] for c, col in enumerate(self._cols) if col.is_active}
            row.off()
        return pressed

    def step(self) -> None:
        pressed = self.scan()
        for key in sorted(pressed - self._held):
            self._key(key)
        self._held = pressed

    def _key(self, key: str) -> None:
        if key == "*":
            self._typed = ""
        elif key == "#":
            if len(self._typed) >= self._min_digits:
                self._sink(Credential("pin", self._typed, self.machine))
            self._typed = ""
        else:
            self._typed = (self._typed + key)[-12:]

    def _run(self) -> None:
        while not self._stop.wait(self._scan_s):
            self.step()


# evdev key names of a keyboard-wedge badge reader
WEDGE_KEYS = {f"KEY_{c}": c for c in "0123456789ABCDEF"}


class KeyboardWedge(_ReaderThread):
    """A USB reader that types the badge UID then Enter; grabbed so nothing else gets the keys."""

    def __init__(self, device: str, *, machine: str, sink: Sink) -> None:
        super().__init__(f"keyboard {device}")
        self.device, self.machine, self._sink = device, machine, sink

    def _run(self) -> None:
        try:
            import evdev  # optional: only on a Pi with a keyboard-wedge reader
        except ImportError as err:
            raise ReaderError("the keyboard-wedge reader needs the 'evdev' package") from err
        dev = evdev.InputDevice(self.device)
        dev.grab()
        typed = ""
        try:
            for event in dev.read_loop():
                if self._stop.is_set():
                    return
                if event.type != evdev.ecodes.EV_KEY or event.value != 1:
                    continue
                name = evdev.ecodes.KEY.get(event.code)
                if name in ("KEY_ENTER", "KEY_KPENTER") and typed:
                    self._sink(Credential("badge", typed, self.machine))
                    typed = ""
                elif isinstance(name, str) and name in WEDGE_KEYS:
                    typed = (typed + WEDGE_KEYS[name])[-32:]
        finally:
            dev.ungrab()


def datagram_credential(data: bytes, machine: str) -> Credential | None:
    """``badge 0A1B2C3D4E`` or ``pin 123456`` as a credential; None for anything else."""
    kind, _, secret = data.decode("ascii", errors="replace").strip().partition(" ")
    if kind == "badge" and 4 <= len(secret) <= 32 and all(c in "0123456789abcdefABCDEF" for c in secret):
        return Credential("badge", secret.upper(), machine)
    if kind == "pin" and 4 <= len(secret) <= 12 and secret.isascii() and secret.isdigit():
        return Credential("pin", secret, machine)
    return None


class SocketReader(_ReaderThread):
    """A simulated reader for demos and trials: each datagram on a Unix socket is one credential
    presented (``fabmeter sim badge laser-1 0A1B2C3D4E``, ``fabmeter sim pin sewing-1 123456``).

        SocketReader("demo-data/readers/laser-1.sock", machine="laser-1", sink=queue.put).start()
    """

    def __init__(self, path: str, *, machine: str, sink: Sink) -> None:
        super().__init__(f"simulated reader {path}")
        self.path, self.machine, self._sink = Path(path), machine, sink

    def _run(self) -> None:
        self.path.unlink(missing_ok=True)  # left by a previous run of this agent
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(self.path))
            sock.settimeout(0.2)
            try:
                while not self._stop.is_set():
                    self._receive(sock)
            finally:
                self.path.unlink(missing_ok=True)

    def _receive(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(256)
        except TimeoutError:
            return
        credential = datagram_credential(data, self.machine)
        if credential is None:
            log.warning("%s: ignored a datagram that is not 'badge HEX' or 'pin DIGITS'", self.path)
        else:
            self._sink(credential)
