"""A TCP proxy on loopback that can pass, delay, blackhole, reset or duplicate traffic.

    with FaultProxy(upstream_port=broker.port) as proxy:
        agent connects to proxy.port
        proxy.mode = "blackhole"     # silent link: bytes are swallowed, no FIN, no RST
        proxy.mode = "reset"         # every open connection is reset, new ones are refused
        proxy.mode = "pass"
        proxy.drop_downstream = True # only broker→client traffic is lost

Modes apply to both directions unless ``drop_downstream``/``drop_upstream`` say otherwise.
Duplicated MQTT messages are made by re-publishing, not here: a byte-level copy would break
the MQTT framing rather than deliver a message twice.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from types import TracebackType


class FaultProxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:upstream_port, with faults on demand."""

    def __init__(self, upstream_port: int, port: int = 0, delay_s: float = 0.2) -> None:
        self.upstream_port = upstream_port
        self.delay_s = delay_s
        self.mode = "pass"
        self.drop_downstream = False
        self.drop_upstream = False
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.connections = 0

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == "reset":
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                _reset(client)
                continue
            self.connections += 1
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, (upstream, "up"))
        sel.register(upstream, selectors.EVENT_READ, (client, "down"))
        try:
            while not self._stop.is_set():
                if self.mode == "reset":
                    break
                for key, _ in sel.select(timeout=0.1):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    dst, direction = key.data
                    data = src.recv(65536)
                    if not data:
                        return
                    self._forward(dst, data, direction)
        except OSError:
            pass
        finally:
            sel.close()
            with self._lock:
                if (client, upstream) in self._pairs:
                    self._pairs.remove((client, upstream))
            _reset(client)
            _reset(upstream)

    def _forward(self, dst: socket.socket, data: bytes, direction: str) -> None:
        if self.mode == "blackhole":
            return
        if direction == "down" and self.drop_downstream:
            return
        if direction == "up" and self.drop_upstream:
            return
        if self.mode == "delay":
            time.sleep(self.delay_s)
        dst.sendall(data)

    def reset_all(self) -> None:
        """Reset every open connection now (RST), whatever the mode."""
        with self._lock:
            pairs, self._pairs = list(self._pairs), []
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self.reset_all()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.close()


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN, as a crashed peer or a middlebox would."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass
