"""A loopback HTTP server that answers slowly: the one fake behind the trickling-server tests.

Used by the HTTP deadline tests of ``core.http_post``, the HTTP model adapter and webhook delivery,
so the three test the same slow server.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator


def serve_slowly(answer: list[bytes], *, gap_s: float, path: str = "/predict") -> Iterator[str]:
    """A loopback server that reads the request, then sends ``answer`` pieces ``gap_s`` apart.

    A generator: tests ``yield from`` it in a fixture and get the URL (``path`` on a free port).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                for piece in answer:
                    if stop.is_set():
                        return
                    conn.sendall(piece)
                    time.sleep(gap_s)
            except OSError:
                return

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}{path}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()
