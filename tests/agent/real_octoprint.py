"""A real OctoPrint, installed from PyPI into its own virtualenv, with its bundled virtual printer.

    with RealOctoPrint(workdir) as octo:       # starts ``octoprint serve`` headless, connects VIRTUAL
        octo.upload("cube.gcode", gcode(40))
        octo.post("/api/files/local/cube.gcode", {"command": "select", "print": True})

How it is set up comes from OctoPrint 1.11's own source: ``api.key`` is the global API key
(``octoprint/server/util/__init__.py``, still honoured until 1.13), ``server.firstRun: false``
skips the setup wizard, ``serial.port: VIRTUAL`` with ``plugins.virtual_printer.enabled`` is the
bundled virtual printer (``octoprint/plugins/virtual_printer``: G4 sleeps its dwell, moves take a
tenth of their real time), ``simulated_errors: []`` keeps its simulated resends out, and
``plugins._disabled`` keeps plugins that call out to the internet from starting. The analysis
queue is throttled (``gcodeAnalysis.throttle_*``) so that a long file is analysed slowly, as on a
Pi, and only while idle (``runAt: idle``, the default: ``printer/standard.py`` pauses the queue
while printing).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-octoprint"
VERSION = "1.11.8"
# what pip says when it cannot reach the package index at all
OFFLINE = re.compile(r"NewConnectionError|Max retries exceeded|Temporary failure in name resolution|"
                     r"Network is unreachable|Could not fetch URL|No matching distribution found")  # fmt: skip


def octoprint_binary() -> Path:
    """``octoprint`` of the pinned version in ``.venv-octoprint``, installed there if missing."""
    binary = VENV / "bin" / "octoprint"
    if binary.exists() and VERSION in _run([str(binary), "--version"]).stdout:
        return binary
    if not (VENV / "bin" / "python").exists():
        _run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = _run([str(VENV / "bin" / "pip"), "install", "--quiet", f"octoprint=={VERSION}"], timeout=1500)
    if pip.returncode != 0:
        if OFFLINE.search(pip.stderr + pip.stdout):
            pytest.skip(f"cannot install octoprint=={VERSION}: the package index is unreachable")
        raise RuntimeError(f"pip could not install octoprint=={VERSION}:\n{pip.stderr[-3000:]}")
    return binary


def _run(args: list[str], *, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(api_key: str) -> dict[str, Any]:
    return {
        "api": {"key": api_key},
        "server": {"firstRun": False, "onlineCheck": {"enabled": False}, "pluginBlacklist": {"enabled": False}},
        "serial": {"port": "VIRTUAL", "baudrate": 115200, "autoconnect": True},
        "gcodeAnalysis": {"runAt": "idle", "throttle_highprio": 0.004, "throttle_normalprio": 0.004,
                          "throttle_lines": 1},  # fmt: skip
        "plugins": {
            "_disabled": ["tracking", "announcements", "softwareupdate", "pluginmanager", "achievements",
                          "errortracking", "discovery", "backup", "health_check"],  # fmt: skip
            "virtual_printer": {"enabled": True, "simulated_errors": [], "resend_ratio": 0, "throttle": 0.001,
                                "simulateReset": False},  # fmt: skip
        },
    }


class RealOctoPrint:
    """``octoprint serve`` on a free loopback port, its printer the bundled virtual one."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.api_key = secrets.token_hex(16)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self.http.headers["X-Api-Key"] = self.api_key
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 240) -> RealOctoPrint:
        binary = octoprint_binary()
        basedir = self.workdir / "octoprint"
        basedir.mkdir(parents=True, exist_ok=True)
        (basedir / "config.yaml").write_text(json.dumps(config(self.api_key)))  # YAML is a superset of JSON
        log = (self.workdir / "octoprint.log").open("wb")
        self._process = subprocess.Popen(
            [str(binary), "serve", "--basedir", str(basedir), "--host", "127.0.0.1", "--port", str(self.port),
             "--iknowwhatimdoing", "--no-color"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"OctoPrint exited with {self._process.returncode}: see {self.log()[-3000:]}")
            if self._operational():
                return self
            time.sleep(0.5)
        raise RuntimeError(f"OctoPrint did not get its virtual printer ready within {timeout} s:\n{self.log()[-3000:]}")

    def _operational(self) -> bool:
        try:
            state = self.get("/api/connection")["current"]["state"]
        except (requests.RequestException, KeyError, ValueError):
            return False
        if state in ("Closed", "Offline"):
            self.post("/api/connection", {"command": "connect", "port": "VIRTUAL", "autoconnect": True})
        return bool(state == "Operational")

    def log(self) -> str:
        return (self.workdir / "octoprint.log").read_text(errors="replace")

    def get(self, path: str) -> Any:
        response = self.http.get(self.url + path, timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> None:
        response = self.http.post(self.url + path, json=body, timeout=10)
        if response.status_code >= 400:
            raise RuntimeError(f"OctoPrint refused POST {path} {body}: {response.status_code} {response.text}")

    def upload(self, name: str, content: bytes, *, print_now: bool = False) -> None:
        files = {"file": (name, content, "application/octet-stream")}
        data = {"print": "true"} if print_now else {}
        response = self.http.post(f"{self.url}/api/files/local", files=files, data=data, timeout=30)
        response.raise_for_status()

    def analysed(self, name: str, timeout: float = 60) -> float:
        """The filament length OctoPrint's analysis found for ``name`` (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            analysis = self.get(f"/api/files/local/{name}").get("gcodeAnalysis") or {}
            length = ((analysis.get("filament") or {}).get("tool0") or {}).get("length")
            if length is not None:
                return float(length)
            time.sleep(0.2)
        raise AssertionError(f"OctoPrint did not analyse {name} within {timeout} s")

    def job(self) -> dict[str, Any]:
        body: dict[str, Any] = self.get("/api/job")
        return body

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self.http.close()

    def __enter__(self) -> RealOctoPrint:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def gcode(dwells: int, *, pad: int = 0, extrude_mm: float = 2.5) -> bytes:
    """A print of ``dwells`` quarter-second steps extruding ``extrude_mm`` each (absolute E), and
    ``pad`` comment lines first, which OctoPrint skips while printing but its analysis reads."""
    lines = [f"; padding {i}" for i in range(pad)] + ["G90", "M82", "G92 E0"]
    for i in range(1, dwells + 1):
        lines += [f"G1 X{10 * (i % 2)} E{i * extrude_mm:.2f} F6000", "G4 P250"]
    return ("\n".join(lines) + "\n").encode()
