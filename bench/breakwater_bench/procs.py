"""The processes under test: fake-llm and `breakwater serve`, on loopback, and small HTTP
helpers to talk to them. Every process is started here and stopped here, by pid."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"  # every byte of the benchmark stays on loopback

# Variables of the real environment that would change what is measured.
_SCRUBBED_PREFIXES = ("BREAKWATER_", "HF_", "CIRCUIT_BREAKER_", "REDIS_URL", "RUST_LOG")


def free_port() -> int:
    """A port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(extra)
    return env


def request(port: int, method: str, path: str, body: object | None = None,
            timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get_json(port: int, path: str) -> dict:
    status, data = request(port, "GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path} on :{port} answered {status}: {data[:200]!r}")
    return json.loads(data)


@dataclass
class Process:
    """A child process with its log file; `stop` ends it by pid."""

    name: str
    popen: subprocess.Popen
    log: Path
    port: int

    def alive(self) -> bool:
        return self.popen.poll() is None

    def usage(self) -> tuple[float, int]:
        """CPU seconds and context switches (voluntary and not) so far, over all threads."""
        cpu, switches = 0, 0
        for task in Path(f"/proc/{self.popen.pid}/task").iterdir():
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                status = (task / "status").read_text().splitlines()
            except FileNotFoundError:  # the thread ended meanwhile
                continue
            cpu += int(fields[11]) + int(fields[12])  # utime, stime
            switches += sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
        return cpu / os.sysconf("SC_CLK_TCK"), switches

    def stop(self, grace: float = 5.0) -> None:
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)

    def wait_ready(self, path: str = "/healthz", timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited: see {self.log}\n{self.log.read_text()[-2000:]}")
            try:
                if request(self.port, "GET", path, timeout=1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready on :{self.port} after {timeout}s")


def start(name: str, argv: list[str], env: dict[str, str], cwd: Path, port: int) -> Process:
    log = cwd / f"{name}.log"
    with open(log, "ab") as out:
        popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
    proc = Process(name, popen, log, port)
    proc.wait_ready()
    return proc


@dataclass
class Binaries:
    breakwater: Path
    fake_llm: Path
    client: Path  # bench-client, the streaming benches' load client

    @classmethod
    def in_dir(cls, bin_dir: str | Path) -> Binaries:
        d = Path(bin_dir).resolve()
        return cls(d / "breakwater", d / "fake-llm", d / "bench-client")


def bench_args(prog: str, description: str | None, command: str,
               add=None) -> argparse.Namespace:
    """The arguments every bench/ entry point takes: OUT_DIR, --quick, --bin-dir, --command,
    and whatever `add(parser)` adds. Also makes SIGTERM (from `timeout` or a shell's trap)
    unwind through `finally` blocks."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("out_dir")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--bin-dir", default="target/release")
    p.add_argument("--command", default=command)
    if add:
        add(p)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return args


def provenance(command: str, tool: str | None = None) -> dict:
    """What a run's figures come from: the command, the date, the commit the binaries were
    built from (read when the run starts, so later commits do not relabel it), the machine
    and the load tool (`tool`; wrk when not given)."""
    def sh(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    commit = sh("git", "rev-parse", "--short", "HEAD") or "unknown"
    if sh("git", "status", "--porcelain", "--", "crates"):
        commit += " (crates/ modified)"
    if tool is None:
        wrk = sh("wrk", "--version").splitlines()
        tool = (f"{wrk[0].split(' [')[0] if wrk else 'wrk'} + wrk/paced.lua "
                "(open-loop pacing, one record per response)")
    return {"command": command, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "commit": commit, "machine": f"{os.cpu_count()} cores, {cpu}", "tool": tool}


@dataclass
class ServerConfig:
    """What `breakwater serve` gets for one run (see DESIGN.md, Configuration)."""

    db: Path
    upstream_port: int
    breaker_enabled: bool
    fail_threshold: int
    call_timeout_s: float
    reset_timeout_s: float
    cache_ttl_s: float
    extra: dict[str, str] = field(default_factory=dict)

    def env(self, port: int) -> dict[str, str]:
        return clean_env({
            "HF_API_TOKEN": "bench",
            "HF_API_BASE": f"http://{HOST}:{self.upstream_port}",
            "BREAKWATER_DB": str(self.db),
            "BREAKWATER_ADDR": f"{HOST}:{port}",
            "CIRCUIT_BREAKER_ENABLED": "true" if self.breaker_enabled else "false",
            "CIRCUIT_BREAKER_FAIL_THRESHOLD": str(self.fail_threshold),
            "CIRCUIT_BREAKER_TIMEOUT_SECONDS": str(self.call_timeout_s),
            "CIRCUIT_BREAKER_RESET_TIMEOUT": str(self.reset_timeout_s),
            "BREAKWATER_CACHE_TTL_SECONDS": str(self.cache_ttl_s),
            "RUST_LOG": "warn",
            **self.extra,
        })


def start_fake_llm(bins: Binaries, workdir: Path) -> Process:
    port = free_port()
    return start("fake-llm", [str(bins.fake_llm), "--addr", f"{HOST}:{port}"],
                 clean_env({"RUST_LOG": "warn"}), workdir, port)


def start_breakwater(bins: Binaries, workdir: Path, config: ServerConfig,
                     wrap: list[str] | None = None) -> Process:
    """`breakwater serve` on a fresh port: a fresh cache, breaker and metrics per run.
    `wrap` prefixes the command (a profiler)."""
    port = free_port()
    argv = (wrap or []) + [str(bins.breakwater), "--env-dir", str(workdir), "serve"]
    return start("breakwater", argv, config.env(port), workdir, port)


def env_flag(name: str) -> bool:
    """A switch set in the environment: anything but unset, empty or 0."""
    return os.environ.get(name, "") not in ("", "0")


def pin_server() -> tuple[list[str], str | None]:
    """`BENCH_PIN=1`: the load client (this process) and what it starts from here on keep to
    core 0, and breakwater, under the `taskset` wrap returned, to the other cores, as a load
    generator on another machine would leave the server its cores. Returns that wrap and a
    line for the report; no wrap and None when not asked for, or on one core."""
    cores = sorted(os.sched_getaffinity(0))
    if not env_flag("BENCH_PIN") or len(cores) < 2:
        return [], None
    rest = ",".join(str(c) for c in cores[1:])
    os.sched_setaffinity(0, {cores[0]})
    return ["taskset", "-c", rest], f"client and fake-llm on core {cores[0]}, breakwater on {rest}"


@contextmanager
def no_halt():
    """`BENCH_NO_HALT=1`, a diagnosis: a spinner at the lowest priority (SCHED_IDLE) on every
    core while the block runs, so that no vCPU halts when idle. In a VM the host wakes a
    halted vCPU, and a request's hop onto an idle core may wait for that; comparing runs
    with and without the spinners tells whether it does. Anything runnable preempts a
    SCHED_IDLE task at once, and its weight is 3 to a normal task's 1024, so the processes
    under test lose next to no CPU time to it (the host, though, sees every vCPU busy).
    Yields a line for the report, or None when not asked for."""
    if not env_flag("BENCH_NO_HALT"):
        yield None
        return
    cores = range(os.cpu_count() or 1)  # all of them: pin_server may have narrowed ours
    spinners = [subprocess.Popen(["chrt", "--idle", "0", "taskset", "-c", str(core),
                                  "sh", "-c", "while :; do :; done"]) for core in cores]
    try:
        yield f"a SCHED_IDLE spinner on each of cores {','.join(map(str, cores))} (no core halts)"
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait(timeout=5)


def ingest(bins: Binaries, workdir: Path, db: Path, notes_dir: Path, users: list[str]) -> None:
    env = clean_env({"BREAKWATER_DB": str(db), "RUST_LOG": "warn"})
    for user in users:
        subprocess.run(
            [str(bins.breakwater), "--env-dir", str(workdir), "ingest", str(notes_dir / user),
             "--user", user, "--no-progress"],
            env=env, cwd=workdir, check=True, stdout=subprocess.DEVNULL, timeout=300)


def set_fault(fake_port: int, fault: dict) -> None:
    status, data = request(fake_port, "PUT", "/admin/fault", fault)
    if status != 200:
        raise RuntimeError(f"fake-llm refused fault {fault}: {status} {data[:200]!r}")


def reset_fake(fake_port: int) -> None:
    request(fake_port, "POST", "/admin/reset")
