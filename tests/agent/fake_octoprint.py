"""A fake OctoPrint on loopback serving recorded JSON from tests/fixtures/octoprint/.

    with FakeOctoPrint(api_key="k") as octo:
        octo.show("printing")              # /api/printer + /api/job from the recorded files
        OctoPrint("printer-1", url=octo.url, api_key="k").poll()
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "octoprint"

# scene -> (printer file, job file); a .txt printer file answers 409
SCENES = {
    "printing": ("printer_printing.json", "job_printing.json"),
    "paused": ("printer_paused.json", "job_paused.json"),
    "cancelling": ("printer_cancelling.json", "job_cancelling.json"),
    "completed": ("printer_operational.json", "job_after_completed.json"),
    "cancelled": ("printer_operational.json", "job_after_cancelled.json"),
    "selected": ("printer_operational.json", "job_selected.json"),
    "error": ("printer_error.json", "job_printing.json"),
    "no_printer": ("printer_409.txt", "job_selected.json"),
    "malformed": ("printer_operational.json", "job_malformed.txt"),
}


class FakeOctoPrint:
    def __init__(self, api_key: str = "test-key") -> None:
        self.api_key = api_key
        self.requests: list[str] = []
        self.delay_s = 0.0
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.show("selected")
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                fake.requests.append(self.path)
                if fake.delay_s:
                    threading.Event().wait(fake.delay_s)
                if self.headers.get("X-Api-Key") != fake.api_key:
                    self._send(403, b'{"error": "Invalid API key"}')
                    return
                route = fake.routes.get(self.path) or fake.routes.get(self.path.split("?")[0])
                status, body = route or (404, b"not found")
                self._send(status, body)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def show(self, scene: str) -> None:
        printer, job = SCENES[scene]
        self.routes = {
            "/api/printer": (409 if printer.endswith(".txt") else 200, (FIXTURES / printer).read_bytes()),
            "/api/job": (200, (FIXTURES / job).read_bytes()),
            "/api/connection": (200, b'{"current": {"state": "Operational"}}'),
        }

    def answer(self, path: str, body: dict[str, Any], status: int = 200) -> None:
        """Serve ``body`` (as JSON) at ``path`` from now on."""
        self.routes[path] = (status, json.dumps(body).encode())

    def start(self) -> FakeOctoPrint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeOctoPrint:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
