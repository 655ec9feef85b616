"""Private servers restart on their port; stop signals never deadlock a waiting main thread."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from broker.services import PrivateRedis

LOOP = """
import threading, sys
{install}
stop = threading.Event()
{hook}
print("ready", flush=True)
while not stop.wait(0.0005):   # the main thread takes and drops stop's lock all the time
    pass
print("stopped", flush=True)
"""
SAFE = LOOP.format(install="from broker.services import stop_on_signals", hook="stop_on_signals(stop)")


def run_and_signal(code: str, times: int = 20) -> bool:
    """Whether the process stops after SIGTERMs while it waits in a tight loop."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for _ in range(times):
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.05)
        out, _ = proc.communicate(timeout=5)
        # a SIGTERM that lands while the interpreter is already finalising (its handlers reset)
        # ends it with -15 after "stopped": it did stop; a deadlock never prints "stopped"
        return "stopped" in out and proc.returncode in (0, -signal.SIGTERM)
    except subprocess.TimeoutExpired:
        return False
    finally:
        proc.kill()
        proc.wait()


def test_stop_signals_end_a_waiting_loop() -> None:
    assert all(run_and_signal(SAFE) for _ in range(5))


HELD = """
import signal, threading
from broker.services import stop_on_signals
stop = threading.Event()
stop_on_signals(stop)
handler = signal.getsignal(signal.SIGTERM)
with stop._cond:            # this very thread holds stop's lock, as inside a first stop.set()
    handler(signal.SIGTERM, None)
    handler(signal.SIGINT, None)
    assert not stop.is_set()
assert stop.wait(2)
print("stopped", flush=True)
"""


def test_a_signal_that_comes_while_the_stop_lock_is_held_does_not_deadlock() -> None:
    """As when a second Ctrl-C lands inside the first one's ``stop.set()``: a handler that called
    ``stop.set()`` itself would wait for a lock its own thread holds, for ever."""
    result = subprocess.run([sys.executable, "-c", HELD], capture_output=True, text=True, timeout=20)
    assert result.stdout.strip() == "stopped", result.stderr


def test_a_private_redis_restarts_on_the_same_port(tmp_path: Path) -> None:
    import redis

    server = PrivateRedis(tmp_path)
    server.start()
    try:
        port = server.port
        server.kill()
        server.start()
        assert server.port == port
        assert redis.Redis(port=port).ping()
    finally:
        server.kill()
