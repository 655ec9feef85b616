"""Run ``fabmeter`` with a wall clock the test can step, like an NTP step on a Pi.

    python tests/faults/wallclock.py CLOCKFILE agent --config agent.toml

CLOCKFILE holds ``<offset seconds> <synced 0|1>`` and is read at every call: ``time.time()`` and
``time.time_ns()`` move by the offset, the monotonic clock does not (a real step leaves it alone),
and the agent's "has NTP synced?" answer comes from the second field. libfaketime would be the
usual tool, but with Python its monotonic sleeps fail (EINVAL) once the monotonic clock is left
alone, so this shim stands in for it at the one edge that matters: the Pi's clock.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

CLOCK = Path(sys.argv[1])
_time, _time_ns = time.time, time.time_ns


def _read() -> tuple[float, bool]:
    offset, synced = CLOCK.read_text().split()
    return float(offset), synced == "1"


def _fake_time() -> float:
    return _time() + _read()[0]


def _fake_time_ns() -> int:
    return _time_ns() + int(_read()[0] * 1e9)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    time.time, time.time_ns = _fake_time, _fake_time_ns
    import agent.main as agent_main

    agent_main.wall_clock_synced = lambda: _read()[1]
    sys.argv = ["fabmeter", *sys.argv[2:]]
    from fabmeter import main

    main()
