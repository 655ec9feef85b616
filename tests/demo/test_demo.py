"""`fabmeter demo` starts a whole fablab, a charge appears within a minute, Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from dashboard.demo import rdm6300_frame, restart_delay


def test_the_demo_badge_frames_are_what_the_agents_reader_accepts() -> None:
    from agent.readers import frame_uid

    # 0x0A ^ 0x1B ^ 0x2C ^ 0x3D ^ 0x4E = 0x4E
    assert rdm6300_frame("0A1B2C3D4E") == b"\x020A1B2C3D4E4E\x03"
    assert frame_uid(rdm6300_frame("0A1B2C3D4E")) == "0A1B2C3D4E"


_LINES: dict[int, queue.Queue[str | None]] = {}


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    for line in proc.stdout or ():
        lines.put(line)
    lines.put(None)


def read_until(proc: subprocess.Popen[str], text: str, timeout: float, seen: list[str]) -> bool:
    """Read the demo's output until a line holds ``text`` (a thread reads it: select() cannot see
    lines already in the text wrapper's buffer)."""
    if proc.pid not in _LINES:
        lines = _LINES[proc.pid] = queue.Queue()
        threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    lines = _LINES[proc.pid]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            return False
        if line is None:
            lines.put(None)
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


@pytest.mark.parametrize(
    ("previous", "ran", "expected"),
    [(None, 0.5, 1.0), (1.0, 0.5, 2.0), (2.0, 10, 4.0), (16.0, 1, 30.0), (30.0, 1, 30.0), (30.0, 61, 1.0)],
)
def test_a_crashed_process_is_restarted_with_back_off(previous: float | None, ran: float, expected: float) -> None:
    assert restart_delay(previous, ran) == expected


def test_sim_says_when_no_demo_listens_and_checks_the_credential(tmp_path: Path) -> None:
    from agent.sim.cli import sim

    runner = CliRunner()
    missing = runner.invoke(sim, ["badge", "laser-1", "0A1B2C3D4E", "--dir", str(tmp_path)])
    assert missing.exit_code == 1
    assert f"no simulated reader answers at {tmp_path}/readers/laser-1.sock" in missing.output
    assert "is `fabmeter demo` running" in missing.output
    bad = runner.invoke(sim, ["pin", "laser-1", "12ab", "--dir", str(tmp_path)])
    assert bad.exit_code == 2 and "a PIN is 4 to 12 digits" in bad.output
    bad = runner.invoke(sim, ["badge", "Laser 1", "0A1B2C3D4E", "--dir", str(tmp_path)])
    assert bad.exit_code == 2 and "is not a machine id" in bad.output


def pid_of(config: Path) -> int:
    """The agent process the demo started with ``config`` (a process of this test's own tree)."""
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(config).encode() in cmdline and b"agent" in cmdline:
            return int(entry.name)
    raise AssertionError(f"no process runs {config}")


def sim(root: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run([sys.executable, "-m", "fabmeter", "sim", *args, "--dir", str(root)],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0 or not check, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_a_newcomer_plays_the_visitor_and_a_killed_agent_comes_back(tmp_path: Path) -> None:
    from billing.config import ServerConfig
    from billing.database import make_engine
    from billing.models import UsageSession
    from billing.visits import open_visit

    root = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fabmeter", "demo", "--dir", str(root), "--port", "0", "--no-visit"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    seen: list[str] = []
    try:
        assert read_until(proc, "dashboard: http://127.0.0.1:", 60, seen), "".join(seen)
        port = int(seen[-1].split("127.0.0.1:")[1].split("/")[0])
        assert read_until(proc, "other ports, picked free: mosquitto 127.0.0.1:", 5, seen), "".join(seen)
        assert read_until(proc, f"sim pin sewing-1 123456 --dir {root}", 5, seen), "".join(seen)
        config = ServerConfig.from_file(root / "server.toml", environ={})
        factory = sessionmaker(make_engine(config.database_url), expire_on_commit=False)
        with factory.begin() as db:
            checkin = open_visit(db, pepper=config.pepper, category="walk-in", actor="t", badge_uid="0C0D0E0F10")
            visit_id = checkin.visit.id
        assert checkin.pin is not None
        assert "laser-1: session_started" in sim(root, "pin", "laser-1", checkin.pin)

        def visit_sessions() -> set[str]:
            with factory() as db:
                rows = db.scalars(select(UsageSession).where(UsageSession.visit_id == visit_id))
                return {row.machine_id for row in rows}

        deadline = time.monotonic() + 20
        while visit_sessions() != {"laser-1"} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert visit_sessions() == {"laser-1"}

        os.kill(pid_of(root / "pi-laser.toml"), signal.SIGKILL)
        assert read_until(proc, "[demo] pi-laser exited with status -9: restarting it in 1 s", 10, seen), "".join(seen)
        assert read_until(proc, "[demo] pi-laser restarted", 10, seen), "".join(seen)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            assert answer.status == 200  # the dashboard never stopped
        deadline = time.monotonic() + 20
        said = ""
        while "session_started" not in said and time.monotonic() < deadline:  # the restarted agent reads again
            said = sim(root, "badge", "laser-1", "0C0D0E0F10", check=False)
        assert "laser-1: session_started" in said
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
