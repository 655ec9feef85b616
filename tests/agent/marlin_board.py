"""A printer board's serial console, written from the firmware sources, for the Marlin driver.

    board = Board("marlin")            # or "prusa-mk3", "klipper"
    with PtyMachine(board) as pty: ...
    board.start("benchy.gcode", 1000); board.advance(250); board.pause(); board.finish(pty)

What each dialect answers:

- Marlin 2.1 (``Marlin/src/sd/cardreader.cpp`` ``report_status``, ``printSelectedFilename``;
  ``gcode/sd/M27.cpp``): ``M27`` says ``SD printing byte <pos>/<size>`` only while
  ``isPrinting()``; a paused print says ``Not SD printing`` but keeps its file open, so
  ``M27 C`` still answers ``Current file: <8.3 name> <long name>``; after the end the file is
  closed and ``M27 C`` answers ``Current file: (no file)``. The end of a file prints
  ``Done printing file`` (``STR_FILE_PRINTED``).
- Prusa MK3 (``Firmware/cardreader.cpp`` ``CardReader::getStatus``): while printing, the long
  file name, ``SD printing byte <pos>/<size>``, then ``h:mm``; paused: ``SD print paused`` (or
  ``Print saved``); ``Done printing file`` from ``Firmware/cmdqueue.cpp``.
- Klipper (``klippy/extras/virtual_sdcard.py`` ``cmd_M27``): ``SD printing byte <pos>/<size>``
  while a file is loaded, paused or not; ``Not SD printing.`` otherwise; errors as ``!! <msg>``
  (``klippy/gcode.py`` ``_respond_error``).
"""

from __future__ import annotations

from collections.abc import Sequence


class Board:
    def __init__(self, dialect: str = "marlin") -> None:
        self.dialect = dialect
        self.file: str | None = None
        self.size = 0
        self.position = 0
        self.paused = False
        self.counter_m = 12.5
        self.late: dict[str, list[str | bytes | float]] = {}  # command -> what to say before answering
        self.instead: dict[str, list[str | bytes | float]] = {}  # command -> an answer to give once

    # -- what happens at the printer -----------------------------------------------------------

    def start(self, name: str, size: int) -> None:
        self.file, self.size, self.position, self.paused = name, size, 0, False

    def advance(self, position: int) -> None:
        self.position = position

    def stop(self) -> None:
        self.file, self.position, self.paused = None, 0, False

    # -- its console -----------------------------------------------------------------------------

    def __call__(self, command: str) -> Sequence[str | bytes | float]:
        if command in self.instead:
            return self.instead.pop(command)
        before = self.late.pop(command, [])
        return [*before, *self.answer(command)]

    def answer(self, command: str) -> list[str | bytes | float]:
        if command == "M105":
            return ["ok T:214.8 /215.0 B:60.1 /60.0 @:127 B@:0"]
        if command == "M27":
            return [*self.m27(), "ok"]
        if command == "M27 C":
            if self.dialect == "prusa-mk3":
                return [*self.m27(), "ok"]  # Prusa's M27 knows only P: C reads as a plain M27
            name = f"{(self.file or '').upper()[:6]}~1.GCO {self.file}" if self.file else "(no file)"
            return [f"Current file: {name}", "ok"]
        if command == "M31":
            return ["echo:Print time: 1h 2m 3s", "ok"]
        if command == "M78":
            return ["Stats: Prints: 3, Finished: 2, Failed: 1", f"Stats: Filament used: {self.counter_m:.2f}m", "ok"]
        return [f'echo:Unknown command: "{command}"', "ok"]

    def m27(self) -> list[str | bytes | float]:
        if self.file is None:
            return ["Not SD printing." if self.dialect == "klipper" else "Not SD printing"]
        byte = f"SD printing byte {self.position}/{self.size}"
        if self.dialect == "prusa-mk3":
            return ["SD print paused"] if self.paused else [self.file, byte, "1:02"]
        if self.dialect == "marlin" and self.paused:
            return ["Not SD printing"]
        return [byte]
