"""Running one scenario with the breaker on or off: a fresh server, wrk offering load, the
upstream's faults switched on schedule, the breaker watched, everything stopped at the end."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import monitor as mon
from .load import Load, LoadRun, Record
from .procs import HOST, Binaries, Process, ServerConfig, get_json, reset_fake, set_fault, \
    start_breakwater
from .scenarios import Scenario, Settings

# Time for wrk to start its threads and connect before the first scheduled request.
LEAD_IN_S = 0.5


@dataclass
class PhaseEvent:
    name: str
    failing: bool
    start: float  # seconds since t0
    end: float
    upstream_calls: int  # calls fake-llm received during the phase
    calls_end: int = 0  # fake-llm's call counter at the phase's end


@dataclass
class RunResult:
    scenario: Scenario
    breaker: bool
    t0: float
    records: list[Record]
    wrk: dict
    phases: list[PhaseEvent]
    samples: list[mon.Sample] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)  # /metrics deltas by source
    transitions: dict[str, int] = field(default_factory=dict)
    upstream_calls: int = 0
    profiled: bool = False
    # Requests the in-flight bound shed (from the breaker's status at the end).
    shed: int = 0

    @property
    def label(self) -> str:
        if "baseline" in self.scenario.tags:
            return self.scenario.name
        mode = "on" if self.breaker else "off"
        return f"{self.scenario.name} / breaker {mode}" + (" (under perf)" if self.profiled else "")

    @property
    def key(self) -> str:
        return _key(self.scenario, self.breaker, self.profiled)


@dataclass
class Bench:
    """What every run shares: settings, binaries, folders, the upstream and the bodies."""

    settings: Settings
    bins: Binaries
    workdir: Path
    out_dir: Path
    db: Path
    fake: Process
    bodies: dict[str, Path]
    profile_wrap: list[str] | None = None  # a profiler around `breakwater serve`

    def server_config(self, breaker: bool, env: tuple = ()) -> ServerConfig:
        s = self.settings
        return ServerConfig(self.db, self.fake.port, breaker, s.fail_threshold,
                            s.call_timeout_s, s.reset_timeout_s, s.cache_ttl_s, dict(env))


def run(bench: Bench, scenario: Scenario, breaker: bool, seed: int,
        profiled: bool = False) -> RunResult:
    reset_fake(bench.fake.port)
    server: Process | None = None
    watcher: mon.Monitor | None = None
    load: LoadRun | None = None
    try:
        if scenario.target == "breakwater":
            server = start_breakwater(bench.bins, bench.workdir,
                                      bench.server_config(breaker, scenario.env),
                                      bench.profile_wrap if profiled else None)
            port = server.port
            warm_up(port, bench.bodies["warmup"])
            # The server has been talking to the upstream as it is when the run starts, so
            # its in-flight bound knows the upstream's latency (not the warm-up's 0 ms).
            set_fault(bench.fake.port, scenario.phases[0].fault)
            warm_up_latency(port, bench.bodies["warmup"])
            reset_fake(bench.fake.port)
            before = mon.scrape(port)
            watcher = mon.Monitor(port, bench.fake.port).start()
        else:
            port, before = bench.fake.port, {}
        set_fault(bench.fake.port, scenario.phases[0].fault)

        t0 = time.time() + LEAD_IN_S
        bodies = bench.bodies.get(scenario.bodies) if scenario.bodies else None
        load = LoadRun(Load(port, scenario.path, scenario.rate, scenario.seconds,
                            scenario.connections, bodies, seed),
                       bench.out_dir / "raw", _key(scenario, breaker, profiled), t0)
        phases = _play(bench, scenario, t0)
        # Answers still on their way end by the call timeout; then wrk can stop.
        load.finish(bench.settings.call_timeout_s + 0.5)
        result = load.wait()
        load = None

        out = RunResult(scenario, breaker, t0, result.records, result.summary, phases,
                        profiled=profiled)
        out.upstream_calls = get_json(bench.fake.port, "/admin/stats")["calls"]
        if watcher:
            out.samples = watcher.stop()
            after = mon.scrape(port)
            out.answers = mon.answers_by_source(before, after)
            out.transitions = mon.transitions(after)
            health = get_json(port, "/api/assistant/health/circuit-breaker")
            limit = health["breakers"][-1].get("in_flight_limit") or {}
            out.shed = int(limit.get("shed", 0))
        return out
    finally:
        if load:
            load.kill()
        if watcher:
            watcher.stop()
        if server:
            server.stop()
        reset_fake(bench.fake.port)


def _play(bench: Bench, scenario: Scenario, t0: float) -> list[PhaseEvent]:
    """Switches the upstream's fault at each phase's start; counts its calls per phase."""
    events: list[PhaseEvent] = []
    offset = 0.0
    calls = get_json(bench.fake.port, "/admin/stats")["calls"]
    for i, phase in enumerate(scenario.phases):
        if i > 0:
            _sleep_until(t0 + offset)
            set_fault(bench.fake.port, phase.fault)
            calls = get_json(bench.fake.port, "/admin/stats")["calls"]
        start = (time.time() - t0) if i > 0 else 0.0
        _sleep_until(t0 + offset + phase.seconds)
        end_calls = get_json(bench.fake.port, "/admin/stats")["calls"]
        events.append(PhaseEvent(phase.name, phase.failing, start, offset + phase.seconds,
                                 end_calls - calls, end_calls))
        offset += phase.seconds
    return events


def _sleep_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


def warm_up_latency(port: int, bodies: Path, skip: int = 150, count: int = 20,
                    parallel: int = 10) -> None:
    """`count` more uncached questions, `parallel` at a time, against the first phase's
    upstream: what the adaptive in-flight bound learns the usual latency from."""
    lines = [line for line in bodies.read_text().splitlines() if line][skip:skip + count]

    def ask(chunk: list[str]) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            for line in chunk:
                conn.request("POST", "/api/assistant/query", body=line.encode(),
                             headers={"Content-Type": "application/json"})
                conn.getresponse().read()
        finally:
            conn.close()

    threads = [threading.Thread(target=ask, args=(lines[i::parallel],)) for i in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def warm_up(port: int, bodies: Path, count: int = 150) -> None:
    """Questions from a pool the runs never ask, one at a time, against a healthy upstream:
    SQLite's page cache and the code paths are warm, the measured questions' answers are not
    cached, and the breaker is closed when the run starts."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        lines = [line for line in bodies.read_text().splitlines() if line]
        for line in lines[:count]:
            conn.request("POST", "/api/assistant/query", body=line.encode(),
                         headers={"Content-Type": "application/json"})
            conn.getresponse().read()
    finally:
        conn.close()


def _key(scenario: Scenario, breaker: bool, profiled: bool = False) -> str:
    suffix = "-profiled" if profiled else ""
    if "baseline" in scenario.tags:
        return scenario.name + suffix
    return f"{scenario.name}-{'on' if breaker else 'off'}{suffix}"
