"""The systemd units parse cleanly and keep the promises the README makes about them."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("fabmeter-*"))


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "systemd" / name)
    return parser


def test_agent_unit_is_a_watched_notify_service_that_always_restarts() -> None:
    service = unit("fabmeter-agent.service")["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) > 0
    assert service["Restart"] == "always"
    assert {"gpio", "dialout", "input"} <= set(service["SupplementaryGroups"].split())


def test_billing_unit_is_a_watched_notify_service_that_always_restarts() -> None:
    service = unit("fabmeter-billing.service")["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"]) > 60  # longer than the default stall_s plus a heartbeat
    assert service["Restart"] == "always"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path: Path) -> None:
    bindir = str(Path(sys.executable).parent)
    for path in UNITS:
        text = path.read_text().replace("/opt/fabmeter/venv/bin", bindir)
        text = text.replace("/opt/fabmeter/deploy", str(DEPLOY))
        (tmp_path / path.name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    ours = [line for line in result.stderr.splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and not ours, result.stderr
