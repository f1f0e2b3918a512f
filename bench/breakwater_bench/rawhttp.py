"""The asyncio client of the streaming and chain benches: one HTTP/1.0 POST per
connection (close-delimited bodies, so a stream's events are read as they arrive without
chunked decoding), and open-loop pacing. Standard library only."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager

from .procs import HOST


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


async def paced(rate: float, seconds: float, make) -> list:
    """Starts `make(i)` at `rate` per second for `seconds`, open loop; waits for all."""
    start, tasks, i = time.perf_counter(), [], 0
    while (due := start + i / rate) < start + seconds:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(make(i)))
        i += 1
    return await asyncio.gather(*tasks)
