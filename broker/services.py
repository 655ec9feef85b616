"""Private Mosquitto and Redis processes on free loopback ports, for tests and the demo.

    with PrivateMosquitto(workdir) as broker:      # anonymous, or conf=Path(".../mosquitto.conf")
        client.connect("127.0.0.1", broker.port)
        broker.kill(); broker.start()              # same port, same persistence

A fault test kills and restarts them; both keep their port across restarts.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

from broker.errors import BrokerError
from broker.messages import MAX_PAYLOAD_BYTES


class ServiceError(BrokerError, RuntimeError):
    """A private server process that could not be started."""


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` — from a short-lived thread, never from the handler itself.

    A handler runs in the main thread, possibly while that thread holds ``stop``'s own lock
    (inside ``stop.wait()``, or inside a first handler's ``stop.set()`` when a second signal
    comes): calling ``stop.set()`` there deadlocks the process for good.
    """

    fired: list[bool] = []

    def handler(signum: int, frame: object) -> None:
        if fired:  # Ctrl-C twice, or a signal relayed by a parent: once is enough
            return
        fired.append(True)
        threading.Thread(target=stop.set, name="stop-signal", daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"process exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise ServiceError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def require_binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if not found:
        raise ServiceError(f"{name} is not installed: run 'make test' or 'apt-get install {name}'")
    return found


class _Process:
    """A server process that can be killed and restarted on the same port."""

    binary = ""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / f"{self.binary}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> _Process:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        log.close()
        try:
            wait_for_port(self.port, proc=self.proc)
        except ServiceError as err:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise ServiceError(f"{self.binary} on port {self.port}: {err}\n{tail}") from err
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def __enter__(self) -> _Process:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class PrivateMosquitto(_Process):
    """A mosquitto of our own: anonymous with a raised queue, or run from a generated config."""

    binary = "mosquitto"

    def __init__(
        self, workdir: Path, port: int | None = None, conf: Path | None = None, extra: str = ""
    ) -> None:
        super().__init__(workdir, port)
        self.conf = conf or self._write_conf(extra)

    def _write_conf(self, extra: str) -> Path:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    "allow_anonymous true",
                    f"user {getpass.getuser()}",
                    "persistence true",
                    f"persistence_location {self.workdir}/",
                    "autosave_interval 1",
                    "max_queued_messages 1000000",
                    "max_inflight_messages 1000",
                    f"message_size_limit {MAX_PAYLOAD_BYTES}",
                    "log_dest stdout",
                    "log_type error",
                    "log_type warning",
                    "",
                ]
            )
            + extra
        )
        return conf

    def command(self) -> list[str]:
        return [require_binary("mosquitto"), "-c", str(self.conf)]


class PrivateRedis(_Process):
    """A redis-server of our own that keeps nothing on disk."""

    binary = "redis-server"

    def command(self) -> list[str]:
        return [
            require_binary("redis-server"),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"
