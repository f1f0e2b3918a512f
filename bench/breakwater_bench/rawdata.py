"""A run's raw data on disk, so the report can be rebuilt without running again
(`python -m breakwater_bench --report-only OUT_DIR`)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

from .load import read_records
from .monitor import Sample
from .runner import PhaseEvent, RunResult
from .scenarios import Settings, all_scenarios


def save_settings(raw_dir: Path, settings: Settings) -> None:
    (raw_dir / "settings.json").write_text(json.dumps(dataclasses.asdict(settings), indent=2))


def load_settings(raw_dir: Path) -> Settings:
    return Settings(**json.loads((raw_dir / "settings.json").read_text()))


def save_run(raw_dir: Path, run: RunResult) -> None:
    """`<key>.run.json` (everything but the requests) and `<key>.samples.csv` (the polls);
    the requests are already in `<key>.requests.csv`, written by wrk."""
    meta = {"scenario": run.scenario.name, "breaker": run.breaker, "profiled": run.profiled,
            "t0": run.t0, "wrk": run.wrk, "answers": run.answers,
            "transitions": run.transitions, "upstream_calls": run.upstream_calls,
            "shed": run.shed,
            "phases": [dataclasses.asdict(p) for p in run.phases]}
    (raw_dir / f"{run.key}.run.json").write_text(json.dumps(meta, indent=2))
    with open(raw_dir / f"{run.key}.samples.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t", "state", "opened_at", "consecutive_failures", "upstream_calls"])
        for s in run.samples:
            w.writerow([f"{s.t:.4f}", s.state, s.opened_at or "", s.consecutive_failures,
                        s.upstream_calls])


def load_runs(raw_dir: Path, settings: Settings) -> list[RunResult]:
    """Every run saved in `raw_dir`, in the order they ran."""
    scenarios = {s.name: s for s in all_scenarios(settings)}
    runs = []
    for path in sorted(raw_dir.glob("*.run.json"), key=lambda p: p.stat().st_mtime):
        meta = json.loads(path.read_text())
        key = path.name[: -len(".run.json")]
        run = RunResult(scenarios[meta["scenario"]], meta["breaker"], meta["t0"],
                        read_records(raw_dir / f"{key}.requests.csv"), meta["wrk"],
                        [PhaseEvent(**p) for p in meta["phases"]], answers=meta["answers"],
                        transitions=meta["transitions"], upstream_calls=meta["upstream_calls"],
                        profiled=meta["profiled"], shed=meta.get("shed", 0))
        with open(raw_dir / f"{key}.samples.csv", newline="") as f:
            run.samples = [Sample(float(r["t"]), r["state"], r["opened_at"] or None,
                                  int(r["consecutive_failures"]), int(r["upstream_calls"]))
                           for r in csv.DictReader(f)]
        runs.append(run)
    return runs
