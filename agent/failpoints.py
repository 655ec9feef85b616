"""Named places where a fault test may kill the agent, as a power cut would.

    failpoint("outbox.after_insert")   # nothing happens unless the environment arms it

``FABMETER_FAILPOINT=outbox.after_insert:3`` makes the process SIGKILL itself the third time it
passes that place: no cleanup, no flush, exactly what a crash or a pulled plug leaves behind.
Unset (always, in production) a failpoint costs one comparison.
"""

from __future__ import annotations

import os
import signal
import threading

POINTS = ("outbox.after_insert", "link.after_publish", "link.after_puback", "outbox.while_deleting")


def _armed(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    name, _, count = value.partition(":")
    if name not in POINTS or not (count or "1").isdigit():
        raise ValueError(f"FABMETER_FAILPOINT={value!r}: use one of {', '.join(POINTS)}, optionally ':N'")
    return name, int(count or "1")


_ARMED = _armed(os.environ.get("FABMETER_FAILPOINT"))
_passes: dict[str, int] = {}
_lock = threading.Lock()


def failpoint(name: str) -> None:
    if _ARMED is None or _ARMED[0] != name:
        return
    with _lock:
        _passes[name] = _passes.get(name, 0) + 1
        if _passes[name] >= _ARMED[1]:
            os.kill(os.getpid(), signal.SIGKILL)
