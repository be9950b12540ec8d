"""`reel serve`'s own listening socket: its connections send small writes at once (Nagle off).

With Nagle on, a response written in two parts (head, then body) waits for the client's
delayed ACK before its body leaves: about 40 ms added to every request on Linux.
"""

from __future__ import annotations

import asyncio
import socket

from reel.cli.serve import _bind


def test_connections_on_the_listening_socket_have_nagle_off() -> None:
    sock = _bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            conn = transport.get_extra_info("socket")
            seen.append(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert seen and seen[0] != 0
