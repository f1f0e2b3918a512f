"""Driving load with wrk: paced, varied requests, one record per response (wrk/paced.lua)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .procs import HOST

LUA = Path(__file__).resolve().parent.parent / "wrk" / "paced.lua"


@dataclass
class Record:
    sent: float  # seconds since the run's t0
    latency_ms: float
    status: int
    source: str  # llm | cache | stale_cache | excerpts | unavailable | -
    circuit: str  # the breaker state the server reported in the answer, or -


@dataclass
class Load:
    """What to offer: `rate` requests/s over `connections` connections for `seconds`."""

    port: int
    path: str
    rate: float
    seconds: float
    connections: int
    bodies: Path | None = None  # None: GET
    seed: int = 1


@dataclass
class LoadResult:
    records: list[Record]
    summary: dict
    t0: float


class LoadRun:
    """wrk running in the background; `wait` collects its records."""

    def __init__(self, load: Load, out_dir: Path, name: str, t0: float):
        self.load, self.t0 = load, t0
        self.records_path = out_dir / f"{name}.requests.csv"
        self.summary_path = out_dir / f"{name}.wrk.json"
        self.stdout_path = out_dir / f"{name}.wrk.txt"
        env = dict(os.environ,
                   BENCH_RATE=str(load.rate), BENCH_CONNS=str(load.connections),
                   BENCH_T0=f"{t0:.6f}", BENCH_T_END=f"{t0 + load.seconds:.6f}",
                   BENCH_BODIES=str(load.bodies or ""), BENCH_RECORDS=str(self.records_path),
                   BENCH_SUMMARY=str(self.summary_path), BENCH_SEED=str(load.seed))
        # wrk's own duration is a backstop: `finish` interrupts it once the schedule is
        # over and the last answers are in (SIGINT makes wrk stop and write its results).
        self.duration = max(1, int(t0 + load.seconds - time.time()) + 30)
        argv = ["wrk", "-t", str(load.connections), "-c", str(load.connections),
                "-d", f"{self.duration}s", "--timeout", "60s", "-s", str(LUA),
                f"http://{HOST}:{load.port}{load.path}"]
        with open(self.stdout_path, "wb") as out:
            self.popen = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)

    def finish(self, tail_s: float) -> None:
        """Waits until the schedule's end plus `tail_s` (time for the last answers), then
        tells wrk to stop."""
        delay = self.t0 + self.load.seconds + tail_s - time.time()
        if delay > 0 and self.popen.poll() is None:
            try:
                self.popen.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                pass
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)

    def wait(self) -> LoadResult:
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        if self.popen.returncode != 0 or not self.records_path.exists():
            raise RuntimeError(f"wrk failed ({self.popen.returncode}): "
                               f"{self.stdout_path.read_text()[-2000:]}")
        return LoadResult(read_records(self.records_path),
                          json.loads(self.summary_path.read_text()), self.t0)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def read_records(path: Path) -> list[Record]:
    with open(path, newline="") as f:
        rows = [Record(float(r["sent_ms"]) / 1000.0, float(r["latency_ms"]), int(r["status"]),
                       r["source"], r["circuit"]) for r in csv.DictReader(f)]
    rows.sort(key=lambda r: r.sent)
    return rows
