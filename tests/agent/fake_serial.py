"""A pseudo-terminal that plays a machine's serial console (Marlin or GRBL) for the drivers.

    with PtyMachine(lambda command: ["ok T:210 /210 B:60 /60"]) as pty:
        Marlin("printer-3", port=pty.path).poll()

A responder answers with lines (``str``, a newline added), raw bytes (``bytes``, sent as they
are: half a line, say) and pauses (``float`` seconds), the way a board that is busy heating
answers late, or a USB-serial adapter delivers a line in two reads.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Callable, Sequence
from types import TracebackType

Responder = Callable[[str], Sequence[str | bytes | float]]


class PtyMachine:
    """Answers each command line (or GRBL's realtime ``?``) with the responder's lines."""

    def __init__(self, responder: Responder, *, realtime: bytes = b"") -> None:
        self.responder = responder
        self.commands: list[str] = []
        self._realtime = realtime
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                buffer += os.read(self.master, 1024)
            except OSError:
                return
            for char in self._realtime:
                while bytes([char]) in buffer:
                    buffer = buffer.replace(bytes([char]), b"", 1)
                    self._answer(chr(char))
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self._answer(line.decode().strip())

    def _answer(self, command: str) -> None:
        self.commands.append(command)
        for item in self.responder(command):
            if self._stop.is_set():
                return  # closed: its descriptors may already belong to another pseudo-terminal
            if isinstance(item, float):
                self._stop.wait(item)
            elif isinstance(item, bytes):
                os.write(self.master, item)
            else:
                os.write(self.master, item.encode("latin-1") + b"\n")

    def send(self, raw: bytes) -> None:
        """Say something nobody asked for (an auto-report, ``Done printing file``, a banner)."""
        os.write(self.master, raw)

    def __enter__(self) -> PtyMachine:
        self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(5)
        os.close(self.master)
        os.close(self._slave)
