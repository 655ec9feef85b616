"""A simulated OctoPrint that prints around the clock, served over real HTTP on loopback.

    sim = SimulatedOctoPrint(port=0, job_s=150, idle_s=20, cancel_every=4)
    sim.start()            # http://127.0.0.1:<sim.port>/api/printer, /api/job, /api/version
    sim.stop()

Between jobs it keeps showing the last job, finished, as OctoPrint does. Every ``cancel_every``-th
job is cancelled half-way. Only ``/api/version``, ``/api/printer``, ``/api/job`` and
``/api/connection`` are served; the API key is checked like OctoPrint does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FILES = ("benchy.gcode", "phone-stand.gcode", "hinge-clip.gcode", "knob-m8.gcode")
MM_PER_S = 12.0  # filament the slicer estimates per second of printing


@dataclass(frozen=True)
class Phase:
    """Where the simulated printer is at a moment: printing job ``n``, or idle after it."""

    n: int
    printing: bool
    elapsed_s: float
    cancelled: bool


class PrintCycle:
    """Job n runs for job_s (or half that when cancelled), then the printer idles idle_s."""

    def __init__(self, job_s: float, idle_s: float, cancel_every: int, clock: Callable[[], float]):
        self.job_s, self.idle_s, self.cancel_every = job_s, idle_s, cancel_every
        self._clock = clock
        self._start = clock()

    def _length(self, n: int) -> float:
        return self.job_s / 2 if self._cancelled(n) else self.job_s

    def _cancelled(self, n: int) -> bool:
        return self.cancel_every > 0 and n % self.cancel_every == 0

    def phase(self) -> Phase:
        t = self._clock() - self._start - self.idle_s  # the demo starts idle
        if t < 0:
            return Phase(0, False, 0.0, False)
        n = 1
        while True:
            length = self._length(n)
            if t < length:
                return Phase(n, True, t, False)
            t -= length
            if t < self.idle_s:
                return Phase(n, False, length, self._cancelled(n))
            t -= self.idle_s
            n += 1

    def printer(self) -> dict[str, Any]:
        phase = self.phase()
        printing = phase.printing
        flags = {"operational": True, "printing": printing, "paused": False, "pausing": False,
                 "cancelling": False, "finishing": False, "error": False, "closedOrError": False,
                 "ready": not printing, "resuming": False, "sdReady": True}  # fmt: skip
        tool, bed = (214.8, 60.1) if printing else (31.0, 27.5)
        return {
            "state": {"text": "Printing" if printing else "Operational", "flags": flags, "error": ""},
            "temperature": {"tool0": {"actual": tool, "target": 215.0 if printing else 0.0, "offset": 0},
                            "bed": {"actual": bed, "target": 60.0 if printing else 0.0, "offset": 0}},
            "sd": {"ready": True},
        }  # fmt: skip

    def job(self) -> dict[str, Any]:
        phase = self.phase()
        if phase.n == 0:
            return {"job": {"file": {"name": None}}, "progress": {}, "state": "Operational"}
        name = FILES[(phase.n - 1) % len(FILES)]
        completion = min(100.0, 100.0 * phase.elapsed_s / self.job_s)
        estimate = self.job_s * MM_PER_S
        return {
            "job": {
                "file": {"name": name, "display": name, "origin": "local", "path": name,
                         "date": 1764000000 + phase.n, "size": 1_000_000},
                "estimatedPrintTime": self.job_s,
                "filament": {"tool0": {"length": estimate, "volume": estimate / 400}},
                "user": "staff",
            },
            "progress": {
                "completion": completion,
                "filepos": int(completion * 10_000),
                "printTime": int(phase.elapsed_s),
                "printTimeLeft": int(self.job_s - phase.elapsed_s) if phase.printing else None,
            },
            "state": "Printing" if phase.printing else "Operational",
        }  # fmt: skip


class SimulatedOctoPrint:
    """The HTTP side: a threaded server on 127.0.0.1 answering like OctoPrint 1.10."""

    def __init__(
        self, *, port: int = 0, api_key: str = "demo-key", job_s: float = 150, idle_s: float = 20,
        cancel_every: int = 4, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.cycle = PrintCycle(job_s, idle_s, cancel_every, clock)
        self.api_key = api_key
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.headers.get("X-Api-Key") != sim.api_key:
                    return self._send(403, {"error": "Invalid API key"})
                routes: dict[str, Callable[[], dict[str, Any]]] = {"/api/version": lambda: {"api": "0.1", "server": "1.10.0",
                                                   "text": "OctoPrint 1.10.0 (simulated)"},
                          "/api/printer": sim.cycle.printer, "/api/job": sim.cycle.job,
                          "/api/connection": lambda: {"current": {"state": "Operational"}}}  # fmt: skip
                route = routes.get(self.path.split("?")[0])
                if route is None:
                    return self._send(404, {"error": "Not found"})
                return self._send(200, route())

            def _send(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def start(self) -> SimulatedOctoPrint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
