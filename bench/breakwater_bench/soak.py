"""`python -m breakwater_bench.soak [--quick] --bin-dir D OUT_DIR`: the chaos soak.

One `breakwater serve` (SQLite notes, its own Redis for the shared answer cache) in front of
fake-llm, 50 req/s for 30 minutes (`--quick`: 3). The upstream's fault changes every 5-30 s
(quick: 3-10 s) at random among: healthy, 5xx, 429 with Retry-After, 503 with HF's
estimated_time, hang, malformed body, slow answers near the call timeout, and for the third
of the requests that stream: a cut mid-stream, a stall mid-stream, a slow drip. Beside it,
Redis is paused (SIGSTOP) for 2-8 s and resumed (SIGCONT) at random.

Invariants over the whole run, in OUT_DIR/soak.md and soak.json, with soak.png:
- every response is 200, or 503 with a Retry-After;
- no request outlives its deadline (BREAKWATER_REQUEST_TIMEOUT_SECONDS, plus 0.5 s);
- upstream calls while the circuit is open are no more than its trials;
- resident memory and open descriptors grow less than 10 % after the warm-up (the peak of
  the last third of the run against the peak of the first third).
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import corpus
from . import monitor as mon
from .load import Load, LoadRun
from .procs import HOST, Binaries, ServerConfig, bench_args, free_port, ingest, provenance, \
    reset_fake, set_fault, start_breakwater, start_fake_llm

REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Plan:
    seconds: float = 1800
    # The answer cache fills for the first minutes (4,000 distinct questions at 50 req/s).
    warm_s: float = 300
    rate: float = 50.0
    connections: int = 64
    fault_every: tuple[float, float] = (5, 30)
    redis_every: tuple[float, float] = (20, 60)
    redis_pause: tuple[float, float] = (2, 8)
    call_timeout_s: float = 2.0
    reset_timeout_s: float = 5.0


QUICK = Plan(seconds=180, warm_s=30, fault_every=(3, 10), redis_every=(10, 25))

FAULTS = {
    "healthy": {"mode": "ok", "latency_ms": 300},
    "5xx": {"mode": "error", "status": 502},
    "429 + Retry-After": {"mode": "error", "status": 429, "retry_after_seconds": 3},
    "503 + estimated_time": {"mode": "error", "status": 503, "estimated_time": 4.0},
    "hang": {"mode": "hang"},
    "malformed": {"mode": "malformed"},
    "slow": {"mode": "ok", "latency_ms": 1800},
    # Streams broken after they began (plain answers are unaffected), and a slow drip.
    "mid-stream cut": {"mode": "ok", "latency_ms": 300,
                       "stream": {"mode": "cut", "after_chunks": 3, "chunk_delay_ms": 20}},
    "stream stall": {"mode": "ok", "latency_ms": 300,
                     "stream": {"mode": "stall", "after_chunks": 3}},
    "slow drip": {"mode": "ok", "latency_ms": 300, "stream": {"chunk_delay_ms": 150}},
}
FAULT_COLORS = {"healthy": "#e8f5e9", "5xx": "#fde0e0", "429 + Retry-After": "#fff3cd",
                "503 + estimated_time": "#ffe0b2", "hang": "#e1bee7", "malformed": "#d7ccc8",
                "slow": "#bbdefb", "mid-stream cut": "#f8bbd0", "stream stall": "#c5cae9",
                "slow drip": "#b2dfdb"}


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Chaos(threading.Thread):
    """Switches the upstream's fault, and pauses Redis, on random schedules."""

    def __init__(self, plan: Plan, fake_port: int, redis_pid: int, t0: float, t_end: float):
        super().__init__(daemon=True)
        self.plan, self.fake_port, self.redis_pid = plan, fake_port, redis_pid
        self.t0, self.t_end = t0, t_end
        self.faults: list[tuple[float, str]] = []  # (seconds since t0, fault name)
        self.pauses: list[tuple[float, float]] = []  # Redis paused (from, to)
        self.stopped = threading.Event()
        self.rng = random.Random(11)

    def run(self) -> None:
        redis = threading.Thread(target=self._redis, daemon=True)
        redis.start()
        names = list(FAULTS)
        while not self.stopped.is_set() and time.time() < self.t_end:
            name = "healthy" if not self.faults else self.rng.choice(names)
            set_fault(self.fake_port, FAULTS[name])
            self.faults.append((time.time() - self.t0, name))
            self.stopped.wait(self.rng.uniform(*self.plan.fault_every))
        set_fault(self.fake_port, FAULTS["healthy"])
        redis.join(timeout=15)

    def _redis(self) -> None:
        while not self.stopped.wait(self.rng.uniform(*self.plan.redis_every)):
            if time.time() > self.t_end - 10:
                return
            start = time.time()
            os.kill(self.redis_pid, signal.SIGSTOP)
            try:
                self.stopped.wait(self.rng.uniform(*self.plan.redis_pause))
            finally:
                os.kill(self.redis_pid, signal.SIGCONT)
            self.pauses.append((start - self.t0, time.time() - self.t0))


class Resources(threading.Thread):
    """Resident memory and open descriptors of one process, every second."""

    def __init__(self, pid: int, t0: float):
        super().__init__(daemon=True)
        self.pid, self.t0 = pid, t0
        self.samples: list[tuple[float, int, int]] = []  # (t, rss KiB, fds)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
                rss = int(next(line.split()[1] for line in status.splitlines()
                               if line.startswith("VmRSS:")))
                fds = len(os.listdir(f"/proc/{self.pid}/fd"))
            except (OSError, StopIteration, ValueError):
                continue
            self.samples.append((time.time() - self.t0, rss, fds))


def main() -> int:
    args = bench_args("breakwater_bench.soak", __doc__, "bench/soak.sh")
    info = provenance(args.command)
    plan = QUICK if args.quick else Plan()
    out = Path(args.out_dir).resolve()
    (out / "raw").mkdir(parents=True, exist_ok=True)
    bins = Binaries.in_dir(args.bin_dir)
    with tempfile.TemporaryDirectory(prefix="breakwater-soak-") as tmp:
        work = Path(tmp)
        result = run(plan, bins, work, out)
    result.update(info)
    (out / "soak.json").write_text(json.dumps(result, indent=2))
    (out / "soak.md").write_text(report(result, plan))
    log(f"report: {out / 'soak.md'}")
    return 0 if result["all_hold"] else 1


def run(plan: Plan, bins: Binaries, work: Path, out: Path) -> dict:
    users = [f"u{i:02d}" for i in range(10)]
    asked = corpus.write_corpus(work / "notes", 2_000, users, 400)
    bodies = work / "queries.jsonl"
    # A third of the questions stream, so the stream faults below meet streams.
    corpus.write_bodies(bodies, asked, users, seed=5, streamed=1 / 3)
    db = work / "soak.db"
    ingest(bins, work, db, work / "notes", users)
    redis_port = free_port()
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", HOST, "--port",
                    str(redis_port), "--save", "", "--appendonly", "no", "--pidfile",
                    str(work / "redis.pid"), "--logfile", str(work / "redis.log")], check=True)
    time.sleep(0.3)
    redis_pid = int((work / "redis.pid").read_text().strip())
    fake = start_fake_llm(bins, work)
    server = None
    try:
        config = ServerConfig(db, fake.port, True, 5, plan.call_timeout_s, plan.reset_timeout_s,
                              30.0, {"REDIS_URL": f"redis://{HOST}:{redis_port}",
                                     "BREAKWATER_REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT_S),
                                     "HF_STREAM_IDLE_TIMEOUT_SECONDS": "2"})
        server = start_breakwater(bins, work, config)
        reset_fake(fake.port)
        t0 = time.time() + 0.5
        t_end = t0 + plan.seconds
        watcher = mon.Monitor(server.port, fake.port).start()
        resources = Resources(server.popen.pid, t0)
        resources.start()
        load = LoadRun(Load(server.port, "/api/assistant/query", plan.rate, plan.seconds,
                            plan.connections, bodies, seed=3), out / "raw", "soak", t0)
        chaos = Chaos(plan, fake.port, redis_pid, t0, t_end)
        time.sleep(max(0.0, t0 - time.time()))
        chaos.start()
        log(f"soak running for {plan.seconds:.0f} s")
        load.finish(REQUEST_TIMEOUT_S + 1)
        chaos.stopped.set()
        chaos.join(timeout=20)
        load.wait()
        samples = watcher.stop()
        resources.stopped.set()
        resources.join(timeout=5)
        metrics = mon.scrape(server.port)
        return check(plan, out, samples, resources.samples, chaos, metrics, t0)
    finally:
        if server:
            server.stop()
        fake.stop()
        subprocess.run(["kill", "-CONT", str(redis_pid)], check=False)
        subprocess.run(["kill", str(redis_pid)], check=False)


def check(plan: Plan, out: Path, samples: list[mon.Sample],
          res: list[tuple[float, int, int]], chaos: Chaos, metrics: dict, t0: float) -> dict:
    with open(out / "raw" / "soak.requests.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    statuses: dict[str, int] = {}
    bad = []
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        ok = r["status"] == "200" or (r["status"] == "503" and r["retry_after"].isdigit()
                                      and int(r["retry_after"]) >= 1)
        if not ok:
            bad.append(r)
    latencies = sorted(float(r["latency_ms"]) for r in rows)
    longest_s = latencies[-1] / 1000 if latencies else 0.0
    # Calls between two samples that both saw the circuit open: only a trial can make one.
    calls_while_open = sum(
        max(0, b.upstream_calls - a.upstream_calls)
        for a, b in zip(samples, samples[1:]) if a.state == "open" and b.state == "open")
    trials = int(sum(v for k, v in metrics.items()
                     if k.startswith("breakwater_circuit_breaker_transitions_total")
                     and 'to="half_open"' in k))
    after = [s for s in res if s[0] >= plan.warm_s]

    def growth(i: int) -> float | None:
        # Peak against peak: the faults make both swing (connections to a slow upstream,
        # answers in flight), a leak makes the last third's peak outgrow the first's.
        if len(after) < 30:
            return None
        third = len(after) // 3
        first = max(s[i] for s in after[:third])
        last = max(s[i] for s in after[-third:])
        return (last - first) / first if first else None

    rss_growth, fd_growth = growth(1), growth(2)
    long_enough = plan.seconds >= 900
    invariants = {
        "every response 200, or 503 with Retry-After": not bad,
        f"no request outlives its deadline ({REQUEST_TIMEOUT_S:.0f} s + 0.5 s)":
            longest_s <= REQUEST_TIMEOUT_S + 0.5,
        "upstream calls while open ≤ trials": calls_while_open <= trials,
        # A few minutes hold one or two faults' swings (connections to a slow upstream)
        # and the caches' fill-up: too short to tell a leak, so not judged.
        "resident memory grows < 10 % after warm-up":
            None if long_enough is False else rss_growth is not None and rss_growth < 0.10,
        "open descriptors grow < 10 % after warm-up":
            None if long_enough is False else fd_growth is not None and fd_growth < 0.10,
    }
    picture(out / "soak.png", rows, samples, res, chaos, t0)
    return {
        "responses": len(rows), "statuses": statuses, "bad_responses": len(bad),
        "bad_examples": bad[:5], "longest_request_s": round(longest_s, 3),
        "calls_while_open": calls_while_open, "trials": trials,
        "rss_kib_first_last": [after[0][1], after[-1][1]] if after else None,
        "rss_growth": rss_growth, "fds_first_last": [after[0][2], after[-1][2]] if after else None,
        "fd_growth": fd_growth, "faults": len(chaos.faults), "redis_pauses": len(chaos.pauses),
        "fault_timeline": chaos.faults, "invariants": invariants,
        "all_hold": all(v is not False for v in invariants.values()),
    }


def picture(path: Path, rows: list[dict], samples: list[mon.Sample],
            res: list[tuple[float, int, int]], chaos: Chaos, t0: float) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from .plot import SOURCE_COLORS, STATE_COLORS

    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(14, 9), sharex=True,
                                        gridspec_kw={"height_ratios": [3, 0.5, 1.6]},
                                        layout="constrained")
    end = max((float(r["sent_ms"]) / 1000 for r in rows), default=0.0)
    bounds = [t for t, _ in chaos.faults] + [end]
    for (start, name), stop in zip(chaos.faults, bounds[1:]):
        ax1.axvspan(start, stop, color=FAULT_COLORS[name], lw=0)
    for a, b in chaos.pauses:
        ax1.axvspan(a, b, ymin=0.96, ymax=1.0, color="black", lw=0)
    seconds = int(end) + 1
    per_source = {s: [0] * seconds for s in SOURCE_COLORS}
    for r in rows:
        i = int(float(r["sent_ms"]) / 1000)
        if 0 <= i < seconds:
            per_source.setdefault(r["source"], [0] * seconds)[i] += 1
    xs = list(range(seconds))
    bottom = [0] * seconds
    for source, color in SOURCE_COLORS.items():
        ys = per_source.get(source, [0] * seconds)
        ax1.bar(xs, ys, bottom=bottom, width=1.0, color=color, lw=0)
        bottom = [b + y for b, y in zip(bottom, ys)]
    ax1.set_ylabel("answers / s by source")
    ax1.set_title("Chaos soak: random upstream faults (bands) and Redis pauses (black marks)",
                  loc="left")
    for a, b in zip(samples, samples[1:]):
        ax2.axvspan(a.t - t0, b.t - t0, color=STATE_COLORS.get(a.state, "#cccccc"), lw=0)
    ax2.set_yticks([])
    ax2.set_ylabel("circuit")
    ax3.plot([s[0] for s in res], [s[1] / 1024 for s in res], color="#1f77b4", label="RSS (MiB)")
    ax3.set_ylabel("RSS (MiB)")
    ax3.set_ylim(bottom=0)
    fd_ax = ax3.twinx()
    fd_ax.plot([s[0] for s in res], [s[2] for s in res], color="#ff7f0e", label="open fds")
    fd_ax.set_ylabel("open descriptors")
    fd_ax.set_ylim(bottom=0)
    ax3.set_xlabel("seconds since start of load")
    handles = [Patch(color=c, label=n) for n, c in FAULT_COLORS.items()]
    handles += [Patch(color=c, label=f"answer: {s}") for s, c in SOURCE_COLORS.items()]
    fig.legend(handles=handles, loc="outside upper center", ncol=7, fontsize=8, frameon=False)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def report(r: dict, plan: Plan) -> str:
    lines = [f"# Chaos soak: {plan.seconds / 60:.0f} minutes at {plan.rate:.0f} req/s", "",
             f"`{r['command']}` at commit {r['commit']}, {r['date']}. {r['faults']} upstream "
             f"faults, {r['redis_pauses']} Redis pauses, {r['responses']:,} responses "
             f"({r['statuses']}).", "", "| invariant | holds |", "| --- | --- |"]
    verdict = {True: "yes", False: "**no**", None: "not judged (run too short)"}
    lines += [f"| {k} | {verdict[v]} |" for k, v in r["invariants"].items()]
    lines += ["", f"Longest request {r['longest_request_s']} s; upstream calls while open "
              f"{r['calls_while_open']} for {r['trials']} trials; RSS {r['rss_kib_first_last']} "
              f"KiB (growth {pct(r['rss_growth'])}); descriptors {r['fds_first_last']} "
              f"(growth {pct(r['fd_growth'])}).", "", "![soak](soak.png)", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
