"""The real agent process against a fake OctoPrint and a private mosquitto, as billing sees it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from agent.outbox import Outbox
from broker.services import PrivateMosquitto
from tests.agent.fake_billing import FakeBilling
from tests.agent.fake_octoprint import FakeOctoPrint

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, port: int, octo_url: str) -> Path:
    (tmp_path / "octoprint.key").write_text("k\n")
    path = tmp_path / "agent.toml"
    path.write_text(f"""
agent_id = "pi-test"
[mqtt]
port = {port}
[outbox]
path = "outbox.db"
resend_after_s = 2
[agent]
poll_s = 0.2
[[machines]]
id = "printer-1"
driver = "octoprint"
url = "{octo_url}"
api_key_file = "octoprint.key"
timeout_s = 1
""")
    return path


def test_agent_meters_a_print_from_start_to_end(tmp_path: Path, mosquitto: PrivateMosquitto) -> None:
    billing = FakeBilling(mosquitto.port, "pi-test").start()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(15)
    with FakeOctoPrint(api_key="k") as octo:
        config = write_config(tmp_path, mosquitto.port, octo.url)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
        agent = subprocess.Popen([sys.executable, "-m", "fabmeter", "agent", "--config", str(config)],
                                 cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert notify.recv(100) == b"READY=1"
            assert notify.recv(100) == b"WATCHDOG=1"
            octo.show("printing")
            billing.wait_for(lambda: len(billing.events) >= 2)
            octo.show("paused")
            time.sleep(0.5)
            octo.show("completed")
            billing.wait_for(lambda: len(billing.events) >= 4)
            time.sleep(0.6)  # the finished job stays on show: it must not count again
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(timeout=15) == 0
        finally:
            agent.kill()
            stderr = agent.stderr.read() if agent.stderr else ""
    events = [billing.events[seq] for seq in sorted(billing.events)]
    assert [e.type for e in events] == ["session_started", "job_started", "job_ended", "session_ended"], stderr
    assert len({e.session for e in events}) == 1 and events[0].data.auth == "none"
    ended = events[2].data
    assert (ended.outcome, ended.filament_mm, ended.filament_source, ended.progress) == ("completed", 2412.8, "estimate", 100.0)
    assert events[3].data.reason == "job_end"
    assert "Traceback" not in stderr and "k\n" not in stderr
    assert Outbox(tmp_path / "outbox.db").count() == 0  # billing's acks came back before the exit
    billing.stop()
