"""A TCP relay that holds every byte coming back from the server for a fixed delay before passing it on: the stand-in
for `tc netem delay` on the db host when the kernel has no netem. Each request/response round trip through it takes
the delay longer, as with netem on the server's link; unlike netem, TCP's own handshakes and acknowledgements are not
delayed, only the data.

`python -m tests.multihost.delay_relay LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS` (run on the db host,
inside its namespace). It starts passing bytes at once; SIGUSR1 turns the delay on, SIGUSR2 off (for connections
already open too). Stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

DELAY = {"on": False, "s": 0.0}


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delayed: bool) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    def due() -> float:
        return loop.time() + (DELAY["s"] if delayed and DELAY["on"] else 0.0)

    async def read() -> None:
        while data := await reader.read(65536):
            queue.put_nowait((due(), data))
        queue.put_nowait((due(), b""))

    async def write() -> None:
        while True:
            due, data = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(read(), write())
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def main(listen_host: str, listen_port: int, target_host: str, target_port: int, delay_ms: float) -> None:
    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        up = asyncio.create_task(pump(client_reader, server_writer, delayed=False))
        down = asyncio.create_task(pump(server_reader, client_writer, delayed=True))
        _, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:  # one side closed or failed: close the other
            task.cancel()
        for writer in (client_writer, server_writer):
            with contextlib.suppress(Exception):
                writer.close()

    DELAY["s"] = delay_ms / 1000
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, DELAY.__setitem__, "on", True)
    loop.add_signal_handler(signal.SIGUSR2, DELAY.__setitem__, "on", False)
    server = await asyncio.start_server(relay, listen_host, listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    listen_host, listen_port, target_host, target_port, delay_ms = sys.argv[1:6]
    asyncio.run(main(listen_host, int(listen_port), target_host, int(target_port), float(delay_ms)))
