"""`python -m breakwater_bench.cluster [--quick] --bin-dir D OUT_DIR`: the cluster-outage run.

Three `breakwater serve` replicas on one PostgreSQL database and their own Redis, behind
nginx (deploy/nginx.conf.template, round-robin); wrk offers 150 req/s through nginx while
fake-llm is healthy, then fails every call (500) for 60 s, then is healthy again. Run twice:
breaker state shared through Redis, and per replica (CIRCUIT_BREAKER_SHARED=false). Then
a third run kills -9 one replica mid-load while notes are written through nginx.

Reports, in OUT_DIR/report.md and OUT_DIR/cluster.json: upstream calls during the outage
against the goal (fail threshold + one trial per reset period + 2), the time from the
outage's start until every replica rejects, answers by status, and for the kill run the
requests that failed at nginx and the acknowledged notes missing from PostgreSQL.
Everything it starts (replicas, nginx, Redis, fake-llm, the database) it stops or drops.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import corpus
from .load import Load, LoadRun
from .procs import HOST, Binaries, Process, bench_args, clean_env, free_port, get_json, \
    provenance, request, reset_fake, set_fault, start, start_fake_llm

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = 3
PG_URL = "postgres://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Plan:
    rate: float = 150.0
    connections: int = 128
    healthy_s: float = 10.0
    outage_s: float = 60.0
    after_s: float = 10.0
    kill_s: float = 20.0
    fail_threshold: int = 5
    reset_timeout_s: float = 10.0
    call_timeout_s: float = 2.0
    upstream_latency_ms: int = 200
    notes: int = 2_000
    users: int = 10
    questions: int = 300


QUICK = Plan(healthy_s=3, outage_s=8, after_s=3, kill_s=6, reset_timeout_s=2.0)


def log(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Stack:
    """PostgreSQL database, Redis, fake-llm and the notes; replicas and nginx per run."""

    def __init__(self, plan: Plan, bins: Binaries, work: Path):
        self.plan, self.bins, self.work = plan, bins, work
        self.db_name = f"bw_bench_cluster_{int(time.time())}"
        self.db_url = f"{PG_URL.rsplit('/', 1)[0]}/{self.db_name}"
        self.redis_port = free_port()
        self.fake: Process | None = None
        self.replicas: list[Process] = []
        self.nginx: subprocess.Popen | None = None
        self.nginx_port = 0

    def __enter__(self) -> Stack:
        psql("CREATE DATABASE " + self.db_name)
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", HOST,
                        "--port", str(self.redis_port), "--save", "", "--appendonly", "no",
                        "--pidfile", str(self.work / "redis.pid"),
                        "--logfile", str(self.work / "redis.log")], check=True)
        self.fake = start_fake_llm(self.bins, self.work)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_run()
        if self.fake:
            self.fake.stop()
        pid = self.work / "redis.pid"
        if pid.exists():
            subprocess.run(["kill", pid.read_text().strip()], check=False)
        psql(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")

    def ingest(self, notes_dir: Path, users: list[str]) -> None:
        env = clean_env({"DATABASE_URL": self.db_url, "RUST_LOG": "warn"})
        for user in users:
            subprocess.run([str(self.bins.breakwater), "--env-dir", str(self.work), "ingest",
                            str(notes_dir / user), "--user", user, "--no-progress"],
                           env=env, cwd=self.work, check=True, stdout=subprocess.DEVNULL,
                           timeout=300)

    def start_run(self, shared: bool) -> None:
        p = self.plan
        assert self.fake
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "FLUSHALL"], check=True,
                       stdout=subprocess.DEVNULL)
        servers = []
        for i in range(REPLICAS):
            port = free_port()
            env = clean_env({
                "BREAKWATER_ADDR": f"{HOST}:{port}",
                "DATABASE_URL": self.db_url,
                "REDIS_URL": f"redis://{HOST}:{self.redis_port}",
                "CIRCUIT_BREAKER_SHARED": "true" if shared else "false",
                "HF_API_TOKEN": "bench",
                "HF_API_BASE": f"http://{HOST}:{self.fake.port}",
                "CIRCUIT_BREAKER_FAIL_THRESHOLD": str(p.fail_threshold),
                "CIRCUIT_BREAKER_TIMEOUT_SECONDS": str(p.call_timeout_s),
                "CIRCUIT_BREAKER_RESET_TIMEOUT": str(p.reset_timeout_s),
                "RUST_LOG": "warn,breakwater::cluster=info",
            })
            argv = [str(self.bins.breakwater), "--env-dir", str(self.work), "serve"]
            self.replicas.append(start(f"replica-{i}", argv, env, self.work, port))
            servers.append(f"        server {HOST}:{port} max_fails=1 fail_timeout=5s;")
        self.nginx_port = free_port()
        prefix = self.work / "nginx"
        prefix.mkdir(exist_ok=True)
        conf = (ROOT / "deploy" / "nginx.conf.template").read_text() \
            .replace("@PORT@", str(self.nginx_port)).replace("@PREFIX@", str(prefix)) \
            .replace("@SERVERS@", "\n".join(servers))
        (prefix / "nginx.conf").write_text(conf)
        self.nginx = subprocess.Popen(["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"),
                                       "-c", str(prefix / "nginx.conf")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        Process("nginx", self.nginx, prefix / "error.log", self.nginx_port).wait_ready()

    def stop_run(self, keep_logs: Path | None = None, label: str = "") -> None:
        if self.nginx and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            self.nginx.wait(timeout=10)
        self.nginx = None
        for replica in self.replicas:
            replica.stop()
            if keep_logs and replica.log.exists():
                (keep_logs / f"{label}-{replica.name}.log").write_text(replica.log.read_text())
                replica.log.unlink()
        self.replicas = []


def psql(sql: str, url: str = PG_URL) -> str:
    return subprocess.run(["psql", url, "-tAc", sql], check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


def breaker_state(port: int) -> str | None:
    try:
        health = get_json(port, "/api/assistant/health/circuit-breaker")
    except (OSError, RuntimeError, ValueError):
        return None
    for b in health["breakers"]:
        if b["name"] == "huggingface":
            return b["state"]
    return None


class OpenWatch(threading.Thread):
    """Polls every replica's LLM breaker every 20 ms; notes when each is first seen open."""

    def __init__(self, ports: list[int]):
        super().__init__(daemon=True)
        self.ports, self.first_open, self.stopped = ports, {}, threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            for port in self.ports:
                if port not in self.first_open and breaker_state(port) in ("open", "half_open"):
                    self.first_open[port] = time.time()
            time.sleep(0.02)


def warm(port: int, bodies: Path, count: int = 60) -> None:
    lines = [line for line in bodies.read_text().splitlines() if line][:count]
    for line in lines:
        request(port, "POST", "/api/assistant/query", json.loads(line), timeout=30)


def outage_run(stack: Stack, shared: bool, bodies: dict[str, Path], out: Path) -> dict:
    p = stack.plan
    assert stack.fake
    reset_fake(stack.fake.port)
    set_fault(stack.fake.port, {"mode": "ok", "latency_ms": p.upstream_latency_ms})
    stack.start_run(shared)
    try:
        warm(stack.nginx_port, bodies["warmup"])
        seconds = p.healthy_s + p.outage_s + p.after_s
        t0 = time.time() + 0.5
        load = LoadRun(Load(stack.nginx_port, "/api/assistant/query", p.rate, seconds,
                            p.connections, bodies["queries"], seed=1),
                       out, f"cluster-outage-{'shared' if shared else 'local'}", t0)
        time.sleep(max(0.0, t0 + p.healthy_s - time.time()))
        calls_before = get_json(stack.fake.port, "/admin/stats")["calls"]
        watch = OpenWatch([r.port for r in stack.replicas])
        outage_at = time.time()
        set_fault(stack.fake.port, {"mode": "error", "status": 500})
        watch.start()
        time.sleep(max(0.0, outage_at + p.outage_s - time.time()))
        calls_outage = get_json(stack.fake.port, "/admin/stats")["calls"] - calls_before
        set_fault(stack.fake.port, {"mode": "ok", "latency_ms": p.upstream_latency_ms})
        watch.stopped.set()
        load.finish(p.call_timeout_s + 0.5)
        result = load.wait()
        statuses: dict[str, int] = {}
        for r in result.records:
            statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
        opened = sorted(watch.first_open.values())
        goal = p.fail_threshold + math.ceil(p.outage_s / p.reset_timeout_s) + 2
        return {
            "shared": shared,
            "outage_from": time.strftime("%H:%M:%S", time.gmtime(outage_at))
            + f".{int(outage_at % 1 * 1000):03d}",
            "upstream_calls_during_outage": calls_outage,
            "goal": goal,
            "first_open_s": round(opened[0] - outage_at, 3) if opened else None,
            "all_open_s": round(opened[-1] - outage_at, 3) if len(opened) == REPLICAS else None,
            "spread_s": round(opened[-1] - opened[0], 3) if len(opened) == REPLICAS else None,
            "responses": len(result.records),
            "statuses": statuses,
            "wrk_errors": result.summary.get("errors", {}),
        }
    finally:
        stack.stop_run(out, f"outage-{'shared' if shared else 'local'}")


def kill_run(stack: Stack, bodies: dict[str, Path], out: Path) -> dict:
    """Shared state on, upstream healthy, questions plus note writes through nginx; one
    replica is killed with SIGKILL halfway."""
    p = stack.plan
    assert stack.fake
    reset_fake(stack.fake.port)
    set_fault(stack.fake.port, {"mode": "ok", "latency_ms": p.upstream_latency_ms})
    stack.start_run(True)
    acked: list[str] = []
    refused: dict[str, int] = {}
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            body = {"user_id": "writer", "title": f"note {i}", "body": f"kill test note {i}"}
            try:
                status, data = request(stack.nginx_port, "POST", "/api/notes", body, timeout=10)
            except OSError as e:
                status, data = 0, str(e).encode()
            if status == 201:
                acked.append(json.loads(data)["id"])
            else:
                refused[str(status)] = refused.get(str(status), 0) + 1
            i += 1
            time.sleep(0.02)

    try:
        t0 = time.time() + 0.5
        load = LoadRun(Load(stack.nginx_port, "/api/assistant/query", p.rate, p.kill_s,
                            p.connections, bodies["queries"], seed=2), out, "cluster-kill", t0)
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        time.sleep(max(0.0, t0 + p.kill_s / 2 - time.time()))
        victim = stack.replicas[1]
        victim.popen.kill()  # SIGKILL
        victim.popen.wait(timeout=5)
        log(f"killed {victim.name} (pid {victim.popen.pid}) with SIGKILL")
        load.finish(p.call_timeout_s + 0.5)
        result = load.wait()
        stop.set()
        thread.join(timeout=15)
        ids = ",".join(f"'{i}'" for i in acked) or "''"
        found = int(psql(f"SELECT count(*) FROM notes WHERE id IN ({ids})", stack.db_url))
        failed = [r for r in result.records if r.status != 200]
        errors = result.summary.get("errors", {})
        return {
            "responses": len(result.records),
            "failed_at_nginx": len(failed) + sum(errors.values()),
            "failed_statuses": sorted({r.status for r in failed}),
            "wrk_errors": errors,
            "notes_acknowledged": len(acked),
            "notes_found": found,
            "notes_lost": len(acked) - found,
            "note_writes_refused": refused,
        }
    finally:
        stack.stop_run(out, "kill")


def main() -> int:
    args = bench_args("breakwater_bench.cluster", __doc__, "bench/cluster-outage.sh")
    info = provenance(args.command)
    plan = QUICK if args.quick else Plan()
    out = Path(args.out_dir).resolve()
    (out / "raw").mkdir(parents=True, exist_ok=True)
    bins = Binaries.in_dir(args.bin_dir)
    with tempfile.TemporaryDirectory(prefix="breakwater-cluster-bench-") as tmp:
        work = Path(tmp)
        users = [f"u{i:02d}" for i in range(plan.users)]
        asked = corpus.write_corpus(work / "notes", plan.notes, users, plan.questions + 60)
        bodies = {"queries": work / "queries.jsonl", "warmup": work / "warmup.jsonl"}
        corpus.write_bodies(bodies["queries"], asked[:plan.questions], users, seed=7)
        corpus.write_bodies(bodies["warmup"], asked[plan.questions:], users, seed=8)
        with Stack(plan, bins, work) as stack:
            log(f"ingesting {plan.notes:,} notes into PostgreSQL")
            stack.ingest(work / "notes", users)
            results = {}
            for shared in (True, False):
                label = "shared" if shared else "per replica"
                log(f"outage run, breaker state {label}")
                results["shared" if shared else "local"] = r = \
                    outage_run(stack, shared, bodies, out / "raw")
                log(f"  {r['upstream_calls_during_outage']} upstream calls in the outage "
                    f"(goal ≤ {r['goal']}), all replicas open after {r['all_open_s']} s, "
                    f"statuses {r['statuses']}")
            log("kill -9 run")
            results["kill"] = k = kill_run(stack, bodies, out / "raw")
            log(f"  failed at nginx {k['failed_at_nginx']}, notes lost {k['notes_lost']} "
                f"of {k['notes_acknowledged']}")
    results["plan"] = plan.__dict__
    results.update(info)
    (out / "cluster.json").write_text(json.dumps(results, indent=2))
    (out / "report.md").write_text(report(results, plan))
    log(f"report: {out / 'report.md'}")
    return 0


def report(r: dict, plan: Plan) -> str:
    s, l, k = r["shared"], r["local"], r["kill"]
    ok = lambda x: sum(v for key, v in x["statuses"].items() if key == "200")  # noqa: E731
    return f"""# Cluster outage: {REPLICAS} replicas behind nginx

`{r['command']}` at commit {r['commit']}, {r['date']}. {plan.rate:.0f} req/s through nginx;
fake-llm healthy ({plan.upstream_latency_ms} ms), then failing (500) for {plan.outage_s:.0f} s,
then healthy. Fail threshold {plan.fail_threshold}, reset {plan.reset_timeout_s:.0f} s, call
timeout {plan.call_timeout_s:.0f} s. Notes in PostgreSQL, answers and (when shared) breaker
state in Redis.

| breaker state | upstream calls during the outage | goal | every replica open after | spread of the trips | answered 200 |
| --- | --- | --- | --- | --- | --- |
| shared through Redis | {s['upstream_calls_during_outage']} | ≤ {s['goal']} | {s['all_open_s']} s | {s['spread_s']} s | {ok(s)} of {s['responses']} |
| per replica | {l['upstream_calls_during_outage']} | ≤ {l['goal']} | {l['all_open_s']} s | {l['spread_s']} s | {ok(l)} of {l['responses']} |

Kill -9 of one replica halfway through {plan.kill_s:.0f} s of load with note writes:
{k['failed_at_nginx']} failed requests at nginx of {k['responses']}
(statuses {k['failed_statuses']}, wrk errors {k['wrk_errors']}); notes acknowledged
{k['notes_acknowledged']}, found in PostgreSQL {k['notes_found']}, lost {k['notes_lost']};
note writes refused {k['note_writes_refused']}.
"""


if __name__ == "__main__":
    sys.exit(main())
