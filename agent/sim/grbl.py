"""A simulated GRBL laser cutter on a pseudo-terminal: answers ``?`` with real status reports.

    sim = SimulatedGrbl(link=Path("/run/demo/laser-1"), cut_s=40, idle_s=50)
    sim.start()     # the agent opens /run/demo/laser-1 like a /dev/ttyACM0
    sim.stop()

It alternates between ``Idle`` and a cut (``Run`` with the laser on, ``FS:`` feed and power, and
the ``A:S`` accessory field) on its own clock, the way a job sent from LightBurn would look. With
``trigger``, it cuts only when that file is touched (as when someone sends a job): one cut of
``cut_s`` per touch.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path


class SimulatedGrbl:
    def __init__(
        self, *, link: Path, cut_s: float = 40, idle_s: float = 50,
        clock: Callable[[], float] = time.monotonic, trigger: Path | None = None,
    ) -> None:  # fmt: skip
        self.link = link
        self.trigger = trigger
        self._seen_mtime: float | None = None
        self._cut_started: float | None = None
        self.cut_s, self.idle_s = cut_s, idle_s
        self._clock = clock
        self._start = clock()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def cutting(self) -> bool:
        if self.trigger is not None:
            return self._triggered()
        t = (self._clock() - self._start) % (self.cut_s + self.idle_s)
        return t >= self.idle_s

    def _triggered(self) -> bool:
        assert self.trigger is not None
        try:
            mtime: float | None = self.trigger.stat().st_mtime
        except FileNotFoundError:
            mtime = None
        if mtime is not None and mtime != self._seen_mtime:
            self._seen_mtime, self._cut_started = mtime, self._clock()
        return self._cut_started is not None and self._clock() - self._cut_started < self.cut_s

    def status(self) -> bytes:
        if self.cutting():
            return b"<Run|MPos:120.000,45.500,0.000|FS:1500,800|A:S>\r\n"
        return b"<Idle|MPos:0.000,0.000,0.000|FS:0,0>\r\n"

    def start(self) -> SimulatedGrbl:
        if self.link.is_symlink() or self.link.exists():
            self.link.unlink()
        self.link.symlink_to(os.ttyname(self._slave))
        self._thread.start()
        return self

    def _serve(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.2)
            if not ready:
                continue
            try:
                buffer += os.read(self._master, 1024)
            except OSError:
                time.sleep(0.2)  # nobody has the port open yet
                continue
            buffer = self._answer(buffer)

    def _answer(self, buffer: bytes) -> bytes:
        # '?' is a real-time command: answered at once, with no newline needed
        while b"?" in buffer:
            buffer = buffer.replace(b"?", b"", 1)
            os.write(self._master, self.status())
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip() == b"$I":
                os.write(self._master, b"[VER:1.1h.20190825:]\r\n[OPT:VL,15,128]\r\nok\r\n")
            elif line.strip() in (b"", b"\r"):
                continue
            else:
                os.write(self._master, b"ok\r\n")
        return buffer

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            os.close(fd)
        if self.link.is_symlink():
            self.link.unlink()
