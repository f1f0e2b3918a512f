"""The report folder: report.md (tables and goals), results.json, CSVs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from .analyze import per_second
from .runner import RunResult
from .scenarios import Settings


def ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.0f}"


def secs(values: list[float | None]) -> str:
    return ", ".join("-" if v is None else f"{v:.2f}" for v in values) or "-"


def pct(v: float) -> str:
    return f"{v:.1f}"


def goals(results: dict[str, dict], s: Settings) -> list[dict]:
    """Each goal of the issue: the figure measured, pass or miss, and by how much."""
    out = []

    def add(goal: str, target: str, value: float | None, limit: float, where: str,
            unit: str = "ms", extra: str = "") -> None:
        if value is None:
            out.append({"goal": goal, "target": target, "measured": "not measured",
                        "verdict": "n/a", "where": where})
            return
        ok = value <= limit
        if unit == "ms":
            shown = f"{value:.2f} ms"
            margin = (f"{limit - value:.2f} ms to spare" if ok else
                      f"missed by {value - limit:.2f} ms ({value / limit:.1f}x the target)")
        else:
            shown = f"{value:g} {unit}"
            margin = f"{limit - value:g} under the budget" if ok else \
                f"missed by {value - limit:g}"
        out.append({"goal": goal, "target": target, "measured": shown + extra,
                    "verdict": ("pass" if ok else "MISS") + f": {margin}", "where": where})

    over = results.get("overhead-on")
    if over:
        held = over["achieved_rps"]
        add(f"query overhead p99 at {s.overhead_rate:g} req/s, {s.notes:,} notes",
            "p99 < 2 ms", over["p99_ms"], 2.0, "overhead / breaker on",
            extra=f" at {held:.0f} req/s achieved of {s.overhead_rate:g} offered")
    light = results.get("overhead-light-on")
    if light:
        add(f"(for scale) query p99 at {s.light_rate:g} req/s", "p99 < 2 ms",
            light["p99_ms"], 2.0, "overhead-light / breaker on")
    for key, where in (("open-circuit-on", f"open-circuit at {s.overhead_rate:g} req/s"),
                       ("outage-on", f"outage at {s.fault_rate:g} req/s")):
        r = results.get(key)
        if r:
            w = r["answers_while_open"]
            add("answers while open (cache/stale/excerpts) p99", "p99 < 2 ms", w["p99_ms"],
                2.0, where, extra=f" over {w['count']} answers")
    outage = results.get("outage-on")
    if outage and outage["failing_phase_calls"]:
        trials = math.ceil(s.outage_s / s.reset_timeout_s)
        budget = s.fail_threshold + trials
        before, after = outage["calls_before_open"][0], outage["calls_after_open"][0]
        split = f" ({before} before the circuit opened, {after} after)" \
            if before is not None else ""
        add(f"upstream calls during the {s.outage_s:g} s outage",
            f"<= {s.fail_threshold} + {trials} trials = {budget}",
            outage["failing_phase_calls"][0], budget, "outage / breaker on", unit="calls",
            extra=split)
        if after is not None:
            add("of which calls once open (trials)", f"<= 1 per {s.reset_timeout_s:g} s = "
                f"{trials}", after, trials, "outage / breaker on", unit="calls")
    for name in ("healthy50", "healthy200"):
        r = results.get(f"{name}-on")
        if r:
            add(f"requests shed, healthy upstream at {r['offered_rps']:g} req/s",
                "0", r["shed"], 0, f"{name} / breaker on", unit="shed",
                extra=f" of {r['count']}")
    for name, before in (("hang50", f"{s.upstream_latency_ms} ms"), ("hang50-fast", "100 ms"),
                         ("hang50-freeze", f"{s.upstream_latency_ms} ms, frozen")):
        r = results.get(f"{name}-on")
        if not r:
            continue
        add(f"hung upstream at 50 req/s ({before} answers before): requests that waited the "
            f"{s.call_timeout_s:g} s timeout", "<= 10", r.get("waited_timeout"), 10,
            f"{name} / breaker on", unit="requests", extra=f" ({r['shed']} shed)")
        calls = r["calls_before_open"][0] if r["calls_before_open"] else None
        add(f"hung upstream at 50 req/s ({before} answers before): upstream calls before the "
            "circuit opened", "<= 15", calls, 15, f"{name} / breaker on", unit="calls")
    blip = results.get("blip-on")
    if blip and blip["first_llm_answer_s"]:
        back = blip["first_llm_answer_s"][0]
        add("blip: LLM answers back after the upstream recovers", "<= 3 s",
            None if back is None else round(back, 2), 3, "blip / breaker on", unit="s")
    backoff = results.get("outage-backoff-on")
    if backoff and backoff["failing_phase_calls"]:
        add(f"{backoff['phases'][1]['end_s'] - backoff['phases'][1]['start_s']:g} s outage with "
            "backoff (reset 2 s, max 60 s): upstream calls", "<= 12",
            backoff["failing_phase_calls"][0], 12, "outage-backoff / breaker on", unit="calls")
    hang_off, hang_on = results.get("hang-off"), results.get("hang-on")
    out_off = results.get("outage-off")
    if hang_off and hang_on:
        off, on = hang_off["during_failure"], hang_on["during_failure"]
        shown = (f"hung upstream, breaker off: p50 {ms(off['p50_ms'])} ms, p99 "
                 f"{ms(off['p99_ms'])} ms (every answer waits for the {s.call_timeout_s:g} s "
                 f"timeout); breaker on: p50 {ms(on['p50_ms'])} ms, p99 {ms(on['p99_ms'])} ms")
        if out_off:
            shown += (f"; 5xx outage, breaker off: {out_off['failing_phase_calls'][0]} "
                      f"upstream calls vs {outage['failing_phase_calls'][0] if outage else '-'}"
                      " with the breaker")
        shown_ok = (off["p50_ms"] or 0) >= 0.9 * s.call_timeout_s * 1000
        out.append({"goal": "breaker off: the same outage shows what users suffer",
                    "target": "timeouts visible", "measured": shown,
                    "verdict": "shown" if shown_ok else "not shown",
                    "where": "hang / breaker on vs off"})
    return out


ROW_HEAD = ("| run | offered/s | achieved/s | p50 ms | p90 ms | p99 ms | max ms | 200 % | llm % "
            "| cache % | stale % | excerpts % | 503 | errors | upstream calls |")


def metrics_agree(r: dict) -> bool:
    """Do the answer levels counted from the responses match `breakwater_answers_total`?"""
    if not r["metrics_answers"]:
        return True  # a baseline: no Breakwater in the path
    counted = {src: r[src] for src in ("llm", "cache", "stale_cache", "excerpts")}
    counted["unavailable"] = r["status_503"]
    served = r["metrics_answers"]
    return all(served.get(k, 0) == v for k, v in counted.items()) and \
        all(counted.get(k, 0) == v for k, v in served.items())


def run_row(r: dict) -> str:
    errors = sum(r["wrk_errors"].values()) - r["wrk_errors"].get("status", 0) + r["status_other"]
    return (f"| {r['label']} | {r['offered_rps']:g} | {r['achieved_rps']:.0f} | "
            f"{ms(r['p50_ms'])} | {ms(r['p90_ms'])} | {ms(r['p99_ms'])} | {ms(r['max_ms'])} | "
            f"{pct(r['answered_200_pct'])} | {pct(r['llm_pct'])} | {pct(r['cache_pct'])} | "
            f"{pct(r['stale_cache_pct'])} | {pct(r['excerpts_pct'])} | {r['status_503']} | "
            f"{errors} | {r['upstream_calls']} |")


def calls(values: list) -> str:
    return ", ".join("-" if v is None else str(v) for v in values) or "-"


def reaction_row(r: dict) -> str:
    fail = r["during_failure"]
    split = ""
    if r["breaker"] and r["calls_before_open"]:
        split = f" ({calls(r['calls_before_open'])} before open / " \
                f"{calls(r['calls_after_open'])} after)"
    return (f"| {r['label']} | {secs(r['time_to_open_s'])} | {secs(r['time_to_close_s'])} | "
            f"{secs(r['first_llm_answer_s'])} | {calls(r['failing_phase_calls'])}{split}"
            f" | {ms(fail['p50_ms'])} | {ms(fail['p99_ms'])} | "
            f"{pct(fail['answered_200_pct'])} | {ms(r['answers_while_open']['p99_ms'])} |")


def write(out_dir: Path, s: Settings, runs: list[RunResult], results: dict[str, dict],
          context: dict, pictures: list[Path], profile: str | None) -> Path:
    (out_dir / "results.json").write_text(json.dumps(
        {"settings": s.__dict__, "context": context, "runs": results,
         "goals": goals(results, s)}, indent=2, default=str))
    for run in runs:
        rows = per_second(run)
        with open(out_dir / "raw" / f"{run.key}.per-second.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["second"])
            w.writeheader()
            w.writerows(rows)
    with open(out_dir / "summary.csv", "w", newline="") as f:
        flat = [{k: v for k, v in r.items() if not isinstance(v, (dict, list))}
                for r in results.values()]
        w = csv.DictWriter(f, fieldnames=list(flat[0].keys()))
        w.writeheader()
        w.writerows(flat)

    faults = [r for r in results.values() if r["scenario"] in
              ("healthy", "outage", "hang", "flapping", "recovery")]
    failing = [r for r in faults if r["failing_phase_calls"]]
    other = [r for r in results.values() if r not in faults]
    lines = [
        "# Breakwater end-to-end benchmark", "",
        f"Command: `{context['command']}`  ",
        f"Date: {context['date']} · commit {context['commit']} · {context['machine']}  ",
        f"Mode: {s.mode} · {s.notes:,} notes over {s.users} users · {s.questions} questions x "
        f"{s.users} users = {s.questions * s.users:,} distinct requests · load tool: "
        f"{context['tool']}", "",
        f"Server: `CIRCUIT_BREAKER_FAIL_THRESHOLD={s.fail_threshold}` "
        f"`CIRCUIT_BREAKER_TIMEOUT_SECONDS={s.call_timeout_s:g}` "
        f"`CIRCUIT_BREAKER_RESET_TIMEOUT={s.reset_timeout_s:g}` "
        f"`BREAKWATER_CACHE_TTL_SECONDS={s.cache_ttl_s:g}` `RUST_LOG=warn`; a fresh "
        "server (empty cache, closed breaker) for every run.", "",
        "## Goals", "", "| goal | target | measured | verdict | run |", "|---|---|---|---|---|",
        *(f"| {g['goal']} | {g['target']} | {g['measured']} | {g['verdict']} | {g['where']} |"
          for g in goals(results, s)), "",
        f"## Fault scenarios ({s.fault_rate:g} req/s offered, upstream {s.upstream_latency_ms}"
        " ms when healthy)", "",
        "Shares are of all requests sent; `errors` = connection errors, timeouts and statuses "
        "other than 200/503. Answer levels are read from each response; the server's "
        "`breakwater_answers_total` deltas agree exactly for "
        f"{sum(map(metrics_agree, results.values()))} of {len(results)} runs.", "", ROW_HEAD, "|---" * 15 + "|", *map(run_row, faults), "",
        "### Breaker reaction", "",
        "Open = outage start to circuit open (server's `opened_at`); close = upstream "
        "recovery to circuit closed (100 ms polls); LLM back = recovery to the first LLM "
        "answer. One figure per failing / recovering phase.", "",
        "| run | open s | close s | LLM back s | upstream calls per failing phase | p50 ms "
        "while failing | p99 ms while failing | 200 % while failing | p99 ms answers while "
        "open |", "|---" * 9 + "|", *map(reaction_row, failing), "",
        "## Overhead (zero-latency upstream) and baselines", "", ROW_HEAD, "|---" * 15 + "|",
        *map(run_row, other), "",
    ]
    if pictures:
        lines += ["## Pictures", ""] + [f"![{p.stem}]({p.name})" for p in pictures] + [""]
    if profile:
        lines += ["## Where the time goes", "", profile, ""]
    lines += ["## Files", "",
              "- `results.json`: every figure above, per run and per phase; `summary.csv`: one "
              "row per run.",
              "- `raw/<run>.requests.csv`: one line per request (send time, latency, status, "
              "answer level, circuit state reported); `raw/<run>.per-second.csv`; "
              "`raw/<run>.wrk.json|txt`: wrk's own counters.", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
