"""The asyncio client of the chain and store benches: one HTTP/1.0 POST per connection
(close-delimited bodies, so a stream's events are read as they arrive without chunked
decoding), and open-loop pacing; also the shuffled slots of the streaming benches, whose
client is `bench-client` (client.py). `KeepAlive`: HTTP/1.1 over reused connections, as
a backend's pooled client talks (a connection set up per request costs this client more than
a search costs the server). Standard library only."""

from __future__ import annotations

import asyncio
import json
import random
import time
from contextlib import asynccontextmanager

from .procs import HOST

#: How the benches that use this client name it in their provenance.
TOOL = "asyncio + rawhttp (HTTP/1.0 sockets, open-loop pacing, one record per stream)"


@asynccontextmanager
async def posted(port: int, path: str, body: dict | None, timeout: float = 30.0):
    """Sends `body` as JSON to `path` (a GET without one); yields (status, reader) once the
    response's head is in, the reader positioned at the body. Closes the connection on the
    way out."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        if body is None:
            request = f"GET {path} HTTP/1.0\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
            writer.write(request.encode())
        else:
            data = json.dumps(body).encode()
            writer.write(
                f"POST {path} HTTP/1.0\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        yield int(head.split(b" ", 2)[1]), reader
    finally:
        writer.close()


class KeepAlive:
    """A pool of persistent connections to one port: a request takes an idle connection,
    or opens one when none is idle, and gives it back after reading the whole
    (Content-Length) response."""

    def __init__(self, port: int):
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, path: str, body: dict | None, timeout: float = 30.0) -> int:
        """Sends `body` as JSON to `path` (a GET without one); returns the status once the
        whole response is read."""
        reader, writer = self.idle.pop() if self.idle else \
            await asyncio.open_connection(HOST, self.port)
        data = b"" if body is None else json.dumps(body).encode()
        method = "GET" if body is None else "POST"
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                     .encode() + data)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await asyncio.wait_for(reader.readexactly(length), timeout)
        self.idle.append((reader, writer))
        return int(head.split(b" ", 2)[1])

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


def shuffled(kinds: tuple[str, ...], seed: int = 7):
    """Which kind of request the `i`-th paced slot carries: each block of `len(kinds)` slots
    holds every kind once, in a seeded random order. A fixed rotation would keep each kind
    at one phase of the upstream's chunk cadence (at 100/s against 10 ms chunks, every
    slot of a kind lands on the same beat), which biased an A-against-A run by 0.15 ms."""
    rng, order = random.Random(seed), []

    def kind(i: int) -> str:
        while len(order) <= i:
            block = list(kinds)
            rng.shuffle(block)
            order.extend(block)
        return order[i]

    return kind


async def paced(rate: float, seconds: float, make) -> list:
    """Starts `make(i)` at `rate` per second for `seconds`, open loop; waits for all."""
    start, tasks, i = time.perf_counter(), [], 0
    while (due := start + i / rate) < start + seconds:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(make(i)))
        i += 1
    return await asyncio.gather(*tasks)
