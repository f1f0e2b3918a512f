"""`python -m breakwater_bench.streams_ab OUT_DIR --base-bin-dir A [--bin-dir B] [--quick]`:
two builds of breakwater compared on the time they add to a stream's first piece, paired.

This machine drifts by more between two runs of one build (0.44 ms, then 0.92 ms added at
p50 a few minutes later) than most changes move it, so runs one after the other cannot tell
two builds apart. Here each round starts one fake-llm and both builds side by side (the base,
A, and this tree's, B, each with its own database), and one client sends direct streams and
streams to each build in shuffled slots (`rawhttp.shuffled`), 40 streams/s of each kind.
Each build's added time is measured against the direct streams of the same round, so both
see the same machine. With the same binary on both sides (`bench/streams-ab.sh
target/release`) the two p50s agree to 0.015 ms, while the p99s differ by up to 0.6 ms (a
p99 of 800 streams rests on its 8 slowest): a p50 gap of a few hundredths is a finding, a
p99 gap under about half a millisecond is not.

Each build's added time is given twice: as the client saw it, and net of fake-llm's own
wait for each stream's first piece (`streams.first_piece_figures`).

Also per build: CPU time and context switches per stream (all threads, from /proc), which
are steadier than the latency and show where a change saves work.

`B_ENV="VAR=VALUE ..."` sets configuration for B only, so one binary can be compared with
itself under two settings (`B_ENV=TOKIO_WORKER_THREADS=1 bench/streams-ab.sh
target/release`). `BENCH_PIN=1` keeps the client and fake-llm to core 0 and both builds
to the other cores (`procs.pin_server`).

Writes `streams_ab.json` and `streams_ab.md` into OUT_DIR and prints the Markdown.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from .procs import Binaries, bench_args, pin_server, provenance, set_fault, start_fake_llm
from .client import TOOL, run_plan, slots
from .rawhttp import shuffled
from .streams import (UPSTREAM, USERS, ask_stream, first_piece_figures, seeded_server,
                      take_waits)

RATE = 40  # streams/s of each kind: 120/s in all
SIDES = ("A", "B")


def side_env() -> dict[str, dict[str, str]]:
    """The extra configuration of each side: B's from `B_ENV`, A's none."""
    pairs = os.environ.get("B_ENV", "").split()
    bad = [p for p in pairs if "=" not in p]
    if bad:
        sys.exit(f"B_ENV: expected VAR=VALUE pairs separated by spaces, got {bad[0]!r}")
    return {"A": {}, "B": dict(p.split("=", 1) for p in pairs)}


def one_round(bins: dict[str, Binaries], env: dict[str, dict[str, str]], seconds: float,
              wrap: list[str]) -> dict:
    """One fake-llm and both builds, fresh; the added time and the work per stream of each."""
    with tempfile.TemporaryDirectory(prefix="bench-streams-ab-") as tmp:
        work = Path(tmp)
        fake = start_fake_llm(bins["B"], work)
        servers = {}
        try:
            set_fault(fake.port, UPSTREAM)
            for side in SIDES:
                (work / side).mkdir()
                servers[side] = seeded_server(bins[side], work / side, "notes", fake.port,
                                              extra=env[side], wrap=wrap)
            kind = shuffled(("direct", *SIDES))
            ports = {"direct": fake.port, **{side: servers[side].port for side in SIDES}}

            def plan(label: str, seconds: float) -> list:
                return [ask_stream(kind(i), f"{label}-{i}", ports[kind(i)], USERS[i % len(USERS)])
                        for i in range(slots(RATE * 3, seconds))]

            warm = plan("warm", 2)  # warm connections and code
            run_plan(bins["B"], [r for _, r in warm], rate=RATE * 3)
            take_waits(fake.port)
            asks = plan("main", seconds)
            before = {side: servers[side].usage() for side in SIDES}
            outcomes = run_plan(bins["B"], [r for _, r in asks], rate=RATE * 3)
            after = {side: servers[side].usage() for side in SIDES}
            results = [(t, o) for (t, _), o in zip(asks, outcomes)]
            waits = take_waits(fake.port)
        finally:
            for s in servers.values():
                s.stop()
            fake.stop()
    figures = first_piece_figures(results, waits, SIDES)
    row = {"n": figures["direct"]["n"]}
    for side in SIDES:
        f = figures[side]
        row[side] = {
            **{k: f[k] for k in ("n", "added_p50_ms", "added_p99_ms", "net_added_p50_ms",
                                 "net_added_p99_ms")},
            "cpu_ms_per_stream": (after[side][0] - before[side][0]) * 1000 / f["n"],
            "switches_per_stream": (after[side][1] - before[side][1]) / f["n"],
        }
    return row


def main() -> int:
    args = bench_args("breakwater_bench.streams_ab", __doc__, "bench/streams-ab.sh BASE",
                      add=lambda p: p.add_argument("--base-bin-dir", required=True))
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bins = {"A": Binaries.in_dir(args.base_bin_dir), "B": Binaries.in_dir(args.bin_dir)}
    rounds, seconds = (1, 8) if args.quick else (3, 20)
    env = side_env()
    wrap, pinned = pin_server()
    result = {"meta": {**provenance(args.command, TOOL), "b_env": env["B"], "pinned": pinned},
              "rounds": []}
    for _ in range(rounds):
        result["rounds"].append(one_round(bins, env, seconds, wrap))
        print(json.dumps(result["rounds"][-1]), file=sys.stderr, flush=True)
    (out_dir / "streams_ab.json").write_text(json.dumps(result, indent=2))
    md = report(result)
    (out_dir / "streams_ab.md").write_text(md)
    print(md)
    return 0


def report(r: dict) -> str:
    m = r["meta"]
    b_env = " ".join(f"{k}={v}" for k, v in m.get("b_env", {}).items())
    lines = [f"Run: `{m['command']}`, {m['date']}, commit {m['commit']}, {m['machine']}"
             + (f"; B with `{b_env}`" if b_env else "")
             + (f"; pinned: {m['pinned']}" if m.get("pinned") else "") + ".", "",
             "| round | build | streams | added p50 | added p99 | net added p50 | net added p99 "
             "| CPU per stream | context switches per stream |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, row in enumerate(r["rounds"], 1):
        for side, label in (("A", "A (base)"), ("B", "B (this tree)")):
            s = row[side]
            lines.append(f"| {i} | {label} | {s['n']} | {s['added_p50_ms']:.3f} ms "
                         f"| {s['added_p99_ms']:.3f} ms | {s['net_added_p50_ms']:.3f} ms "
                         f"| {s['net_added_p99_ms']:.3f} ms | {s['cpu_ms_per_stream']:.2f} ms "
                         f"| {s['switches_per_stream']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
