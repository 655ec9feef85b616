"""A child agent process for the kill -9 test: records events one by one while the link publishes.

    python link_child.py <outbox> <port> <count>
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from agent.config import AgentConfig, MqttConfig
from agent.link import Link
from agent.outbox import Outbox
from agent.sessions import Pending
from agent.snapshot import Now
from broker.messages import SessionTotals

SESSION = "22222222-2222-4222-8222-222222222222"


def main(outbox_path: str, port: str, count: str) -> None:
    config = AgentConfig("pi-test", MqttConfig(port=int(port)), Path(outbox_path), resend_after_s=1.0)
    outbox = Outbox(config.outbox_path)
    link = Link(config, machines=("laser-1",), version="test")
    link.start()
    for i in range(int(count)):
        now = Now(time.monotonic_ns(), time.time_ns(), True, "boot-child")
        outbox.record([Pending("laser-1", "session_checkpoint", SESSION, SessionTotals(i, i, 0), now)])
        link.wake()
        time.sleep(0.002)
    print("recorded", flush=True)
    while outbox.count():
        time.sleep(0.05)
    print("drained", flush=True)
    link.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
