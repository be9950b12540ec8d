"""The app under uvicorn on a loopback port, in a thread, and a raw-socket client: for tests
that must see what the server does before a request body has ended."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


@contextmanager
def serve(app: FastAPI) -> Iterator[int]:
    """Run ``app`` on 127.0.0.1; yield its port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def read_status(sock: socket.socket, timeout: float) -> int | None:
    """The status code of the answer on ``sock``, or ``None`` if none came in ``timeout``."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionError):
        pass
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data.split(b" ", 2)[1])


def send_streaming(
    port: int, head: str, chunks: Iterator[bytes], *, chunked: bool = True
) -> tuple[int | None, int]:
    """Send ``head`` (request line and headers, no blank line) then ``chunks`` as a chunked
    body (or raw), stopping as soon as the server answers. Returns (status, body bytes sent)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        extra = "Transfer-Encoding: chunked\r\n" if chunked else ""
        sock.sendall((head + extra + "\r\n").encode())
        sent = 0
        sock.setblocking(False)
        for chunk in chunks:
            frame = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if chunked else chunk
            view = memoryview(frame)
            while view:
                try:
                    n = sock.send(view)
                except BlockingIOError:
                    if _answered(sock):
                        return read_status(sock, 10), sent
                    time.sleep(0.005)
                    continue
                except ConnectionError:
                    return read_status(sock, 1), sent
                view = view[n:]
            sent += len(chunk)
            if _answered(sock):
                return read_status(sock, 10), sent
        if chunked:
            try:
                sock.sendall(b"0\r\n\r\n")
            except (BlockingIOError, ConnectionError):
                pass
        return read_status(sock, 30), sent


def _answered(sock: socket.socket) -> bool:
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
