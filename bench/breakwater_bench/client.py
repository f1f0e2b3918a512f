"""The streaming benches' client: `bench-client` (crates/bench-client), a Rust binary on
one thread, sends a plan of requests (open-loop at a rate, or one after another), each over
its own HTTP/1.0 connection, and stamps each stream's first piece as soon as the read that
brought it returns. The asyncio client these benches used before (`rawhttp`), parsing some
2,000 chunks a second on the core it shares with fake-llm under `BENCH_PIN`, stamped a
first piece when its loop got round to it: late by more than the goal it measured
(bench/README.md, "Streaming")."""

from __future__ import annotations

import json
import math
import subprocess

from .procs import Binaries

#: How the benches that use this client name it in their provenance.
TOOL = ("bench-client (Rust, one thread; HTTP/1.0 sockets, open-loop pacing, "
        "one record per stream)")


def req(port: int, path: str, body: dict | None = None) -> dict:
    """One request of a plan: a POST of `body` as JSON, or a GET without one."""
    return {"port": port, "path": path, "body": body}


def slots(rate: float, seconds: float) -> int:
    """How many requests an open-loop plan at `rate` holds over `seconds`."""
    return math.ceil(rate * seconds)


def run_plan(bins: Binaries, requests: list[dict], rate: float | None,
             timeout_s: float = 30.0) -> list[dict]:
    """Sends `requests` at `rate` per second (None: one after another); one outcome per
    request, in order: `status` (0: no response), `first_ms` (to the first piece of answer,
    or None), `total_ms`, `events` ([name, data] of an event stream) and `error`."""
    plan = {"rate": rate, "timeout_s": timeout_s, "requests": requests}
    # A backstop only: every request is itself bounded by `timeout_s`.
    span = len(requests) / rate if rate else len(requests) * 5.0
    done = subprocess.run([str(bins.client)], input=json.dumps(plan), capture_output=True,
                          text=True, timeout=span + timeout_s + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench-client failed ({done.returncode}): {done.stderr[-2000:]}")
    outcomes = json.loads(done.stdout)
    if len(outcomes) != len(requests):
        raise RuntimeError(f"bench-client gave {len(outcomes)} outcomes for {len(requests)}")
    return outcomes
