"""A G-code console (Marlin, Prusa, Klipper's serial): each command is answered by lines ending in ``ok``.

    console = Console(LineStream(link), hear=print)
    console.ask("M105", until=time.monotonic() + 3)     # ['T:210.0 /210.0 B:60.0 /60.0'] or None

The firmware answers commands in the order it got them, one ``ok`` each, and says nothing
else to tell answers apart. So the console counts: a command that got no ``ok`` in time is
still owed one, and what arrives before that ``ok`` belongs to it, not to the next command.
Input nobody asked for (left over, auto-reports, ``busy:``, ``//action:``, errors) goes to
``hear`` before a command is sent, and so does every line of an answer.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.machines.serialport import LineStream

Listener = Callable[[str], None]


class Console:
    """Commands sent over a ``LineStream`` and matched with their own ``ok``."""

    def __init__(self, stream: LineStream, *, hear: Listener) -> None:
        self.stream = stream
        self._hear = hear
        self.owed = 0  # commands sent whose ``ok`` has not come yet

    def ask(self, command: str, *, until: float) -> list[str] | None:
        """The lines answering ``command`` (the ``ok`` line's remainder last), or None if it did not
        come by ``until``. Nothing, ``busy:`` included, moves ``until``."""
        for stale in self.stream.pending():
            self._take(stale)
        while self.owed:  # late answers to earlier commands come first: wait them out
            late = self.stream.line(until=until)
            if late is None:
                return None
            self._take(late)
        self.stream.send(f"{command}\n".encode())
        self.owed = 1
        answer: list[str] = []
        while self.owed:
            line = self.stream.line(until=until)
            if line is None:
                return None
            if self._take(line):
                return answer + [line[2:].strip()]
            answer.append(line)
        return None  # the board restarted while answering: the answer is lost with it

    def _take(self, line: str) -> bool:
        """Hear ``line``; whether it was an ``ok`` that paid a command."""
        self._hear(line)
        if is_ok(line) and self.owed:
            self.owed -= 1
            return True
        return False

    def reset(self) -> None:
        """The board restarted: nothing sent before is still owed an answer."""
        self.owed = 0
        self.stream.forget()


def is_ok(line: str) -> bool:
    """``ok``, ``ok T:…`` (M105's answer on the ok line), ``ok N12 P15 B3`` (ADVANCED_OK)."""
    return line == "ok" or line.startswith("ok ") or line.startswith("ok\t")
