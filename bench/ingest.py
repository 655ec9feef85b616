"""Ingest benchmark: a backlog of usage events drained by billing vs a bare paho subscriber.

    .venv/bin/python bench/ingest.py [--events 100000] [--agents 4]

Both consumers hold a persistent MQTT 5 session on a private mosquitto; the backlog is
published while both are away (through a bounded window of in-flight messages, as an agent's
outbox does). Then each one drains it alone: the bare subscriber only counts messages, billing
decodes, commits to SQLite, applies sessions and acks. Prints one ``name: value`` per line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from billing.config import ServerConfig  # noqa: E402
from billing.database import make_engine, upgrade  # noqa: E402
from billing.seed import seed  # noqa: E402
from billing.service import BillingService  # noqa: E402
from billing.visits import open_visit  # noqa: E402
from broker import topics  # noqa: E402
from broker.messages import SessionEnded, SessionStarted, SessionTotals, UsageEvent, encode  # noqa: E402
from broker.services import PrivateMosquitto, PrivateRedis  # noqa: E402

PEPPER = "bench-pepper"
MACHINES = {"pi-laser": "laser-1", "pi-printer": "printer-1", "pi-sewing": "sewing-1"}


def client(port: int, client_id: str, persistent: bool) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    if persistent:
        props.SessionExpiryInterval = 3600
    c.connect("127.0.0.1", port, clean_start=not persistent, properties=props)
    return c


def events_for(agent: str, machine: str, count: int, visit: int) -> list[bytes]:
    """Sessions of 100 events: started, 98 checkpoints, ended."""
    stream, out, session = str(uuid.uuid4()), [], ""
    for seq in range(1, count + 1):
        step = (seq - 1) % 100
        if step == 0:
            session = str(uuid.uuid4())
            kind, data = "session_started", SessionStarted(auth="online", visit=str(visit))
        elif step == 99 or seq == count:
            kind, data = "session_ended", SessionEnded("badge_out", step * 30, step * 20, 0)
        else:
            kind, data = "session_checkpoint", SessionTotals(step * 30, step * 20, 0)
        out.append(encode(UsageEvent(
            stream=stream, seq=seq, machine=machine, type=kind, session=session, boot="b",
            mono_ns=seq, wall_ns=time.time_ns(), wall_synced=True, data=data)))  # fmt: skip
    return out


def publish_backlog(port: int, payloads: list[tuple[str, bytes]], window: int = 100) -> float:
    pub = client(port, "bench-publisher", persistent=False)
    free = threading.Semaphore(window)
    pub.on_publish = lambda *_a: free.release()
    pub.loop_start()
    start = time.monotonic()
    for topic, payload in payloads:
        free.acquire()
        pub.publish(topic, payload, qos=1)
    for _ in range(window):
        free.acquire()
    elapsed = time.monotonic() - start
    pub.disconnect()
    pub.loop_stop()
    return elapsed


def bare_drain(port: int, total: int) -> float:
    done, count, first = threading.Event(), [0], [0.0]

    def on_message(*_a: Any) -> None:
        if count[0] == 0:
            first[0] = time.monotonic()
        count[0] += 1
        if count[0] >= total:
            done.set()

    start = time.monotonic()
    bare = client(port, "bench-bare", persistent=True)
    bare.on_message = on_message
    bare.loop_start()
    done.wait(300)
    elapsed = time.monotonic() - start
    bare.disconnect()
    bare.loop_stop()
    return elapsed


def subscribe_bare(port: int) -> None:
    bare = client(port, "bench-bare", persistent=True)
    bare.loop_start()
    bare.subscribe(topics.pattern("events"), qos=1)
    time.sleep(0.5)
    bare.disconnect()
    bare.loop_stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=3, choices=(1, 2, 3))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker, redis_server = PrivateMosquitto(work / "mqtt"), PrivateRedis(work / "redis")
        broker.start()
        redis_server.start()
        try:
            run(args.events, args.agents, work, broker, redis_server)
        finally:
            broker.kill()
            redis_server.kill()


def run(total: int, agents: int, work: Path, broker: PrivateMosquitto, redis_server: PrivateRedis) -> None:
    url = f"sqlite:///{work / 'ledger.db'}"
    upgrade(url)
    factory = sessionmaker(make_engine(url))
    with factory() as db:
        seed(db)
        visit = open_visit(db, pepper=PEPPER, category="member", actor="bench").visit.id
        db.commit()
    (work / "pepper").write_text(PEPPER)
    (work / "server.toml").write_text(
        f'database_url = "{url}"\nredis_url = "{redis_server.url}"\npepper_file = "pepper"\n'
        f'[mqtt]\nport = {broker.port}\n[organisation]\nname = "B"\naddress = "A"\nsiret = "1"\n'
    )
    config = ServerConfig.from_file(work / "server.toml", environ={})
    service = BillingService(config)  # create billing's persistent session, then leave
    service.start()
    service.events.connected.wait(5)
    time.sleep(0.5)
    service.stop()
    subscribe_bare(broker.port)

    per_agent = total // agents
    backlog = []
    for agent in list(MACHINES)[:agents]:
        backlog += [(topics.agent_events(agent), p) for p in events_for(agent, MACHINES[agent], per_agent, visit)]
    total = len(backlog)
    publish_s = publish_backlog(broker.port, backlog)
    print(f"events: {total}")
    print(f"payload_bytes_avg: {sum(len(p) for _t, p in backlog) // total}")
    print(f"publish_rate_per_s: {total / publish_s:.0f}")

    bare_s = bare_drain(broker.port, total)
    print(f"bare_drain_s: {bare_s:.2f}")
    print(f"bare_rate_per_s: {total / bare_s:.0f}")

    service = BillingService(config)
    start = time.monotonic()
    service.start()
    while service.committed < total and time.monotonic() - start < 300:
        time.sleep(0.01)
    billing_s = time.monotonic() - start
    service.stop()
    print(f"billing_drain_s: {billing_s:.2f}")
    print(f"billing_rate_per_s: {total / billing_s:.0f}")
    print(f"billing_committed: {service.committed}")
    print(f"ratio_to_bare: {(total / billing_s) / (total / bare_s):.2f}")


if __name__ == "__main__":
    main()
