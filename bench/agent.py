"""Agent benchmark: steady-state cost of polling, and outbox drain speed after an offline spell.

    python bench/agent.py                 # 60 s of steady state, then the drain of 20,000 events
    python bench/agent.py --seconds 10 --events 5000

Prints one ``name: value`` line per figure. Runs a private mosquitto and a fake OctoPrint on
loopback; the agent runs as a real ``fabmeter agent`` process (GPIO through gpiozero's mock pins).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.outbox import Outbox  # noqa: E402
from agent.sessions import Pending  # noqa: E402
from agent.snapshot import Now  # noqa: E402
from broker.messages import SessionTotals  # noqa: E402
from broker.services import PrivateMosquitto, free_port  # noqa: E402
from tests.agent.fake_billing import FakeBilling  # noqa: E402
from tests.agent.fake_octoprint import FakeOctoPrint  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def config_text(port: int, octo_url: str) -> str:
    return f"""
agent_id = "pi-bench"
[mqtt]
port = {port}
[outbox]
path = "outbox.db"
[agent]
poll_s = 1.0
[[machines]]
id = "printer-1"
driver = "octoprint"
url = "{octo_url}"
api_key_file = "octoprint.key"
[[machines]]
id = "sewing-1"
driver = "gpio"
pin = "GPIO27"
"""


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def steady_state(workdir: Path, seconds: float) -> None:
    with PrivateMosquitto(workdir / "mosquitto") as broker, FakeOctoPrint(api_key="k") as octo:
        octo.show("printing")
        billing = FakeBilling(broker.port, "pi-bench").start()
        (workdir / "octoprint.key").write_text("k\n")
        (workdir / "agent.toml").write_text(config_text(broker.port, octo.url))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "GPIOZERO_PIN_FACTORY": "mock"}
        agent = subprocess.Popen([sys.executable, "-m", "fabmeter", "agent", "--config", str(workdir / "agent.toml")],
                                 cwd=ROOT, env=env, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            time.sleep(3)  # imports and first connection are not steady state
            polls_before, ticks_before, started = len(octo.requests), cpu_ticks(agent.pid), time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - started
            ticks = cpu_ticks(agent.pid) - ticks_before
            polls = (len(octo.requests) - polls_before) / 2  # /api/printer + /api/job per poll
            print(f"steady_seconds: {elapsed:.1f}")
            print(f"octoprint_polls_per_s: {polls / elapsed:.2f}")
            print(f"rss_mb: {rss_mb(agent.pid):.1f}")
            print(f"rss_peak_mb: {rss_mb(agent.pid, 'VmHWM'):.1f}")
            print(f"cpu_percent_of_one_core: {100 * ticks / TICKS / elapsed:.2f}")
        finally:
            agent.terminate()
            agent.wait(15)
            billing.stop()


def drain(workdir: Path, count: int) -> None:
    outbox_path = workdir / "drain.db"
    outbox = Outbox(outbox_path)
    now = Now(time.monotonic_ns(), time.time_ns(), True, "bench")
    session = "33333333-3333-4333-8333-333333333333"
    for start in range(0, count, 1000):
        batch = [Pending("laser-1", "session_checkpoint", session, SessionTotals(i, i, i), now)
                 for i in range(start, min(start + 1000, count))]  # fmt: skip
        outbox.record(batch)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, str(ROOT / "tests/agent/link_child.py"), str(outbox_path), str(port), "0"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(1.5)  # the agent runs offline with its backlog
    broker = PrivateMosquitto(workdir / "drain-mosquitto", port=port).start()
    billing = FakeBilling(port, "pi-test").start()
    try:
        while not billing.events:
            time.sleep(0.005)
        first = time.monotonic()
        while outbox.count():
            time.sleep(0.01)
        elapsed = time.monotonic() - first
        print(f"drain_events: {count}")
        print(f"drain_seconds: {elapsed:.2f}")
        print(f"drain_events_per_s: {count / elapsed:.0f}")
        print(f"drain_duplicates: {sum(billing.deliveries.values()) - len(billing.deliveries)}")
    finally:
        child.wait(30)
        billing.stop()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="steady-state measurement length")
    parser.add_argument("--events", type=int, default=20_000, help="events buffered before the drain")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fabmeter-bench-") as tmp:
        steady_state(Path(tmp), args.seconds)
        drain(Path(tmp), args.events)


if __name__ == "__main__":
    main()
