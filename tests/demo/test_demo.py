"""`fabmeter demo` starts a whole fablab, a charge appears within a minute, Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from dashboard.demo import rdm6300_frame


def test_the_demo_badge_frames_are_what_the_agents_reader_accepts() -> None:
    from agent.readers import frame_uid

    # 0x0A ^ 0x1B ^ 0x2C ^ 0x3D ^ 0x4E = 0x4E
    assert rdm6300_frame("0A1B2C3D4E") == b"\x020A1B2C3D4E4E\x03"
    assert frame_uid(rdm6300_frame("0A1B2C3D4E")) == "0A1B2C3D4E"


def read_until(proc: subprocess.Popen[str], text: str, timeout: float, seen: list[str]) -> bool:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not selector.select(timeout=1):
            continue
        line = proc.stdout.readline()
        if not line:
            return False
        seen.append(line)
        if text in line:
            return True
    return False


def test_the_demo_shows_a_charge_within_a_minute_and_stops_cleanly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fabmeter", "demo", "--dir", str(tmp_path / "demo"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    seen: list[str] = []
    try:
        assert read_until(proc, "dashboard: http://127.0.0.1:", 60, seen), "".join(seen)
        assert read_until(proc, "[charge]", 75, seen), "".join(seen)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert read_until(proc, "stopped", 5, seen) or "stopped" in "".join(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
    charge = next(line for line in seen if "[charge]" in line)
    assert "Découpe laser" in charge and "€" in charge
    logs = tmp_path / "demo" / "logs"
    assert {p.name for p in logs.iterdir()} >= {"billing.log", "dashboard.log", "pi-laser.log"}
