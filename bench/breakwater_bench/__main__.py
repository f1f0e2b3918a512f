"""`python -m breakwater_bench [--quick] OUT_DIR`: the whole benchmark, start to report.

Generates the notes, ingests them, starts fake-llm, runs every scenario with the breaker on
and off (a fresh `breakwater serve` each time), then writes the report, the pictures and the
raw data into OUT_DIR. Every child process is stopped on the way out, also on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

from . import corpus, plot, profile, rawdata, report
from .analyze import analyze
from .procs import Binaries, ingest, provenance, start_fake_llm
from .runner import Bench, RunResult, run
from .scenarios import QUICK, Settings, all_scenarios


def main() -> int:
    args = parse_args()
    out_dir = Path(args.out_dir).resolve()
    raw = out_dir / "raw"
    if args.report_only:
        settings = rawdata.load_settings(raw)
        runs = rawdata.load_runs(raw, settings)
        info = json.loads((raw / "context.json").read_text())
    else:
        settings = QUICK if args.quick else Settings()
        raw.mkdir(parents=True, exist_ok=True)
        rawdata.save_settings(raw, settings)
        info = provenance(args.command)
        (raw / "context.json").write_text(json.dumps(info, indent=2))
        runs = run_everything(args, settings, out_dir)
    finish(out_dir, settings, runs, info)
    return 0


def run_everything(args: argparse.Namespace, settings: Settings, out_dir: Path) -> list[RunResult]:
    bins = Binaries.in_dir(args.bin_dir)
    # SIGTERM (from `timeout` or the shell's trap) unwinds through the `finally` blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="breakwater-bench-") as tmp:
        bench = prepare(settings, bins, Path(tmp), out_dir, args)
        try:
            runs = run_all(bench, settings, args.only)
        finally:
            bench.fake.stop()
    log(f"load done in {time.time() - started:.0f} s")
    return runs


def finish(out_dir: Path, settings: Settings, runs: list[RunResult], info: dict) -> None:
    results = {r.key: analyze(r, settings.call_timeout_s) for r in runs}
    by_key = {r.key: r for r in runs}
    pictures = [p for p in (
        plot.timelines(by_key, ["outage", "flapping"], out_dir / "timeline-outage-flapping.png"),
        plot.timelines(by_key, ["hang", "recovery"], out_dir / "timeline-hang-recovery.png"),
        plot.timelines(by_key, ["hang50", "hang50-fast", "hang50-freeze"], out_dir / "timeline-hang50.png"),
        plot.timelines(by_key, ["blip"], out_dir / "timeline-blip.png"),
        plot.timelines(by_key, ["outage-backoff"], out_dir / "timeline-outage-backoff.png"),
    ) if p]
    raw = out_dir / "raw"
    notes = [t for t in (profile.summarise(raw),) if t]
    path = report.write(out_dir, settings, runs, results, info, pictures,
                        "\n\n".join(notes) or None)
    log(f"report: {path}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="breakwater_bench", description=__doc__)
    p.add_argument("out_dir")
    p.add_argument("--report-only", action="store_true",
                   help="rebuild the report from OUT_DIR/raw without running anything")
    p.add_argument("--quick", action="store_true", help="short smoke run (about 2 minutes)")
    p.add_argument("--bin-dir", default="target/release", help="where breakwater and fake-llm are")
    p.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    p.add_argument("--profile", action="store_true",
                   help="record the server with perf during the overhead run (breaker on)")
    p.add_argument("--command", default="bench/run.sh", help="how this run was started, for the report")
    return p.parse_args()


def prepare(s: Settings, bins: Binaries, workdir: Path, out_dir: Path,
            args: argparse.Namespace) -> Bench:
    users = [f"u{i:02d}" for i in range(s.users)]
    log(f"generating {s.notes:,} notes for {len(users)} users")
    asked = corpus.write_corpus(workdir / "notes", s.notes, users, s.questions + 100)
    questions, warmup = asked[:s.questions], asked[s.questions:]
    bodies = {"queries": workdir / "queries.jsonl", "chat": workdir / "chat.jsonl",
              "warmup": workdir / "warmup.jsonl"}
    n = corpus.write_bodies(bodies["queries"], questions, users, seed=7)
    corpus.write_bodies(bodies["warmup"], warmup, users, seed=8)
    corpus.write_chat_bodies(bodies["chat"], questions)
    (out_dir / "raw" / "questions.txt").write_text("\n".join(questions) + "\n")
    log(f"{n:,} distinct requests; ingesting")
    db = workdir / "bench.db"
    ingest(bins, workdir, db, workdir / "notes", users)
    fake = start_fake_llm(bins, workdir)
    wrap = profile.perf_wrap(out_dir / "raw") if args.profile else None
    return Bench(s, bins, workdir, out_dir, db, fake, bodies, wrap)


def run_all(bench: Bench, s: Settings, only: str) -> list[RunResult]:
    wanted = {x for x in only.split(",") if x}
    scenarios = [sc for sc in all_scenarios(s) if not wanted or sc.name in wanted]
    total = sum(sc.seconds * len(sc.breaker_modes) for sc in scenarios)
    log(f"{len(scenarios)} scenarios, {total:.0f} s of load")
    plan = [(sc, breaker, False) for sc in scenarios for breaker in sc.breaker_modes]
    if bench.profile_wrap:
        # An extra run under perf: profiling slows the server, so it is not the measured one.
        plan += [(sc, True, True) for sc in scenarios if sc.name == "overhead"]
    runs = []
    for i, (scenario, breaker, profiled) in enumerate(plan):
        result = run(bench, scenario, breaker, seed=i + 1, profiled=profiled)
        rawdata.save_run(bench.out_dir / "raw", result)
        runs.append(result)
        a = analyze(result)
        log(f"{a['label']:<34} {a['achieved_rps']:7.0f}/s  p50 {a['p50_ms'] or 0:8.2f}  "
            f"p99 {a['p99_ms'] or 0:9.2f} ms  200 {a['answered_200_pct']:5.1f}%  "
            f"503 {a['status_503']:5d}  upstream {a['upstream_calls']}")
    return runs


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
