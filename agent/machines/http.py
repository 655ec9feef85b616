"""An HTTP session whose every call has connect and read timeouts, for the HTTP drivers.

    session = TimeoutSession(timeout_s=5)
    session.get("http://octopi.local/api/job")     # never waits more than 5 s per phase
    session.last_status                            # 409, for a caller that needs to tell
"""

from __future__ import annotations

from typing import Any

import requests


class TimeoutSession(requests.Session):
    """A ``requests.Session`` that puts a timeout on every request and remembers the last status."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        super().__init__()
        self.timeout = (min(timeout_s, 3.05), timeout_s)
        self.last_status: int | None = None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        self.last_status = None
        response = super().request(method, url, *args, **kwargs)
        self.last_status = response.status_code
        return response
