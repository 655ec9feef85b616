"""Failpoints kill only when armed, on the pass they name, and refuse a name they do not know."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from agent import failpoints


def test_an_unknown_failpoint_is_refused() -> None:
    with pytest.raises(ValueError, match="use one of outbox.after_insert"):
        failpoints._armed("outbox.somewhere")


def test_an_armed_failpoint_kills_on_the_nth_pass() -> None:
    code = "from agent.failpoints import failpoint\nfor i in range(5):\n    print(i, flush=True)\n    failpoint('link.after_publish')\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "FABMETER_FAILPOINT": "link.after_publish:3"})  # fmt: skip
    assert result.returncode == -signal.SIGKILL
    assert result.stdout.split() == ["0", "1", "2"]
