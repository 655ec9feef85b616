"""Dashboard benchmark: the live board with 50 machines under 20 concurrent clients, and the
delay from a state write in Redis to the server-sent event at the browsers.

    python bench/dashboard.py                       # 20 clients × 25 pages; 300 writes to 20 streams
    python bench/dashboard.py --clients 10 --pages 10 --writes 100

Prints one ``name: value`` line per figure. Runs a private redis-server, a SQLite ledger and the
dashboard in werkzeug's threaded server on loopback (gunicorn's gthread workers are similar).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from billing.config import ServerConfig  # noqa: E402
from billing.database import make_engine, upgrade  # noqa: E402
from billing.live import LiveState  # noqa: E402
from billing.models import Machine  # noqa: E402
from billing.seed import seed  # noqa: E402
from broker.messages import AgentStatus, MachineState  # noqa: E402
from broker.services import PrivateRedis  # noqa: E402
from dashboard import create_app  # noqa: E402
from dashboard.staff import create_user  # noqa: E402
from tests.dashboard.conftest import PASSWORD, write_config  # noqa: E402

MACHINES = [f"printer-{i:02d}" for i in range(1, 51)]
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
JOB = re.compile(r'class="job" title="bench-(\d+)"')


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def prepare(folder: Path, redis_url: str) -> ServerConfig:
    database = folder / "ledger.db"
    upgrade(f"sqlite:///{database}")
    engine = make_engine(f"sqlite:///{database}")
    with Session(engine) as db:
        seed(db)
        db.add_all(Machine(id=m, name=f"Imprimante {m[-2:]}", kind="printer", agent="pi-bench") for m in MACHINES)
        create_user(db, "bench", PASSWORD, role="staff", actor="bench")
        db.commit()
    engine.dispose()
    return ServerConfig.from_file(write_config(folder, database, redis_url), environ={})


def fill(live: LiveState) -> None:
    live.status("pi-bench", AgentStatus(online=True, bdseq=1, version="1", machines=tuple(MACHINES)))
    for i, machine in enumerate(MACHINES):
        live.state(state(machine, i, 50.0))


def state(machine: str, n: int, progress: float) -> MachineState:
    return MachineState(machine=machine, state="printing", wall_ns=time.time_ns(), job=f"bench-{n}",
                        progress=progress, elapsed_s=600, remaining_s=1800, user="Camille",
                        temperatures={"nozzle": 215.0, "bed": 60.0})  # fmt: skip


def logged_in(base: str) -> requests.Session:
    client = requests.Session()
    token = TOKEN.search(client.get(f"{base}/login", timeout=10).text)
    assert token is not None, "no CSRF token on the login page"
    data = {"username": "bench", "password": PASSWORD, "csrf_token": token.group(1)}
    response = client.post(f"{base}/login", data=data, timeout=10)
    response.raise_for_status()
    return client


def page_latencies(base: str, clients: int, pages: int) -> list[float]:
    sessions = [logged_in(base) for _ in range(clients)]
    results: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def run(client: requests.Session) -> None:
        start.wait()
        for _ in range(pages):
            began = time.perf_counter()
            response = client.get(f"{base}/live/", timeout=30)
            elapsed = time.perf_counter() - began
            assert response.status_code == 200 and response.text.count('class="card ') >= 50
            with lock:
                results.append(elapsed)

    threads = [threading.Thread(target=run, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def listen(base: str, client: requests.Session, seen: dict[int, float], ready: threading.Event,
           stop: threading.Event) -> None:  # fmt: skip
    """Read the stream as bytes arrive (read1), noting when each bench job's event came in."""
    with client.get(f"{base}/live/events", stream=True, timeout=30,
                    headers={"Accept": "text/event-stream"}) as response:  # fmt: skip
        buffer = b""
        while not stop.is_set():
            chunk = response.raw.read1(65536)
            if not chunk:
                return
            now = time.perf_counter()
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.startswith(b"retry:"):
                    ready.set()
                elif line.startswith(b"data: "):
                    found = JOB.search(json.loads(line[6:])["html"])
                    if found:
                        seen.setdefault(int(found.group(1)), now)


def sse_delays(base: str, live: LiveState, listeners: int, writes: int) -> list[float]:
    stop = threading.Event()
    tables: list[dict[int, float]] = [{} for _ in range(listeners)]
    readies = [threading.Event() for _ in range(listeners)]
    threads = [
        threading.Thread(target=listen, args=(base, logged_in(base), tables[i], readies[i], stop), daemon=True)
        for i in range(listeners)
    ]
    for t in threads:
        t.start()
    for ready in readies:
        ready.wait(10)
    sent: dict[int, float] = {}
    for n in range(1000, 1000 + writes):
        sent[n] = time.perf_counter()
        live.state(state(MACHINES[n % len(MACHINES)], n, float(n % 100)))
        time.sleep(0.02)
    time.sleep(1.0)
    stop.set()
    delays = [table[n] - at for table in tables for n, at in sent.items() if n in table]
    missing = listeners * writes - len(delays)
    if missing:
        print(f"sse_events_missing: {missing}")
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--pages", type=int, default=25)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--listeners", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server_redis = PrivateRedis(folder / "redis")
        server_redis.start()
        try:
            config = prepare(folder, server_redis.url)
            live = LiveState(redis.Redis.from_url(server_redis.url, decode_responses=True))
            fill(live)
            app = create_app({"FABMETER": config, "SSE_LIFETIME_S": 60.0, "SSE_BLOCK_MS": 1000})
            server = make_server("127.0.0.1", 0, app, threaded=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            base = f"http://127.0.0.1:{server.server_port}"
            report(base, live, args)
            server.shutdown()
        finally:
            server_redis.kill()


def report(base: str, live: LiveState, args: Any) -> None:
    began = time.perf_counter()
    pages = page_latencies(base, args.clients, args.pages)
    took = time.perf_counter() - began
    print(f"board_machines: {len(MACHINES)}")
    print(f"board_clients: {args.clients}")
    print(f"board_pages: {len(pages)}")
    print(f"board_page_median_ms: {statistics.median(pages) * 1000:.1f}")
    print(f"board_page_p95_ms: {percentile(pages, 0.95) * 1000:.1f}")
    print(f"board_pages_per_s: {len(pages) / took:.1f}")
    delays = sse_delays(base, live, args.listeners, args.writes)
    print(f"sse_listeners: {args.listeners}")
    print(f"sse_events: {len(delays)}")
    print(f"sse_delay_p50_ms: {percentile(delays, 0.50) * 1000:.1f}")
    print(f"sse_delay_p95_ms: {percentile(delays, 0.95) * 1000:.1f}")
    print(f"sse_delay_max_ms: {max(delays) * 1000:.1f}")


if __name__ == "__main__":
    main()
