"""Watching a run from outside: the breaker's state every 100 ms, the upstream's call
counter, and Prometheus counters before and after."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from dataclasses import dataclass, field

from .procs import HOST, request

POLL_SECONDS = 0.1
STATUS_PATH = "/api/assistant/health/circuit-breaker"


@dataclass
class Sample:
    t: float  # epoch seconds, when the answer came back
    state: str
    opened_at: str | None
    consecutive_failures: int
    upstream_calls: int


@dataclass
class Monitor:
    """Polls the breaker status and fake-llm's counters in a background thread."""

    server_port: int
    fake_port: int
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Monitor:
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        return self.samples

    def _run(self) -> None:
        server = http.client.HTTPConnection(HOST, self.server_port, timeout=2)
        fake = http.client.HTTPConnection(HOST, self.fake_port, timeout=2)
        next_at = time.time()
        # Bounded by the stop event and, as a backstop, by a count (an hour of polling).
        for _ in range(36_000):
            if self._stop.is_set():
                break
            try:
                # The LLM's breaker, not the stores' (`redis`, `postgres`) beside it.
                status = next(b for b in _get(server, STATUS_PATH)["breakers"]
                              if b["name"] not in ("redis", "postgres"))
                calls = _get(fake, "/admin/stats")["calls"]
                self.samples.append(Sample(time.time(), status["state"], status.get("opened_at"),
                                           status.get("consecutive_failures", 0), calls))
            except (OSError, http.client.HTTPException, ValueError, KeyError, IndexError,
                    StopIteration):
                server.close()
                fake.close()
            next_at += POLL_SECONDS
            self._stop.wait(max(0.0, next_at - time.time()))
        server.close()
        fake.close()


def _get(conn: http.client.HTTPConnection, path: str) -> dict:
    conn.request("GET", path)
    response = conn.getresponse()
    return json.loads(response.read())


_METRIC = re.compile(r'^(breakwater_[a-z_]+)\{([^}]*)\}\s+([0-9.eE+-]+)$')


def scrape(server_port: int) -> dict[str, float]:
    """The counters of `/metrics` that a report uses, as `name{labels}` -> value."""
    status, data = request(server_port, "GET", "/metrics")
    out: dict[str, float] = {}
    if status != 200:
        return out
    for line in data.decode().splitlines():
        m = _METRIC.match(line)
        if m and m.group(1) in ("breakwater_answers_total",
                                "breakwater_circuit_breaker_transitions_total",
                                "breakwater_circuit_breaker_calls_total"):
            out[f"{m.group(1)}{{{m.group(2)}}}"] = float(m.group(3))
    return out


def answers_by_source(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    """Deltas of `breakwater_answers_total` by `source` label."""
    out: dict[str, int] = {}
    for key, value in after.items():
        if key.startswith("breakwater_answers_total"):
            source = re.search(r'source="([^"]+)"', key)
            if source:
                out[source.group(1)] = int(value - before.get(key, 0.0))
    return out


def transitions(after: dict[str, float]) -> dict[str, int]:
    """`breakwater_circuit_breaker_transitions_total` by `to` state (a fresh server each run)."""
    out: dict[str, int] = {}
    for key, value in after.items():
        if key.startswith("breakwater_circuit_breaker_transitions_total"):
            to = re.search(r'to="([^"]+)"', key)
            if to:
                out[to.group(1)] = out.get(to.group(1), 0) + int(value)
    return out
