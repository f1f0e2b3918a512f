"""Figures from a run's raw data: throughput, latency percentiles, answers by level, upstream
calls, and the breaker's reaction times."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from datetime import datetime

from .load import Record
from .runner import RunResult

SOURCES = ("llm", "cache", "stale_cache", "excerpts")
OPEN_STATES = ("open", "forced_open")


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(records: list[Record]) -> dict:
    lat = [r.latency_ms for r in records]
    return {
        "count": len(lat),
        "p50_ms": percentile(lat, 50),
        "p90_ms": percentile(lat, 90),
        "p99_ms": percentile(lat, 99),
        "max_ms": max(lat) if lat else None,
    }


def shares(records: list[Record]) -> dict:
    n = len(records) or 1
    ok = [r for r in records if r.status == 200]
    by = {src: sum(1 for r in ok if r.source == src) for src in SOURCES}
    return {
        "answered_200": len(ok),
        "answered_200_pct": 100.0 * len(ok) / n,
        **{f"{src}_pct": 100.0 * c / n for src, c in by.items()},
        **{src: c for src, c in by.items()},
        "status_503": sum(1 for r in records if r.status == 503),
        "status_other": sum(1 for r in records if r.status not in (200, 503)),
    }


def _epoch(rfc3339: str | None) -> float | None:
    if not rfc3339:
        return None
    try:
        return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def time_to_open(run: RunResult, start: float, end: float) -> float | None:
    """Seconds from a failing phase's start (t0-relative) to the circuit opening: the
    server's own `opened_at` when it lies in the phase, else the first poll that saw it."""
    for s in run.samples:
        t = s.t - run.t0
        if t < start:
            continue
        if t > end + 1.0:
            return None
        if s.state in OPEN_STATES or s.state == "half_open":
            opened = _epoch(s.opened_at)
            if opened is not None and start - 0.05 <= opened - run.t0 <= t:
                return max(0.0, opened - run.t0 - start)
            return t - start
    return None


def time_to_close(run: RunResult, start: float, end: float) -> float | None:
    """Seconds from the upstream's recovery (t0-relative) to the first poll that saw the
    circuit closed again (±0.1 s: the poll interval)."""
    was_open = False
    for s in run.samples:
        t = s.t - run.t0
        if t < start - 0.2:
            continue
        if s.state != "closed":
            was_open = True
        elif t >= start and was_open:
            return t - start
        elif t >= start and not was_open:
            return 0.0  # it never opened (or had closed already)
        if t > end:
            return None
    return None


def first_llm_answer(run: RunResult, start: float) -> float | None:
    """Seconds from the upstream's recovery to the first answer the LLM gave again."""
    done = [r.sent + r.latency_ms / 1000.0 for r in run.records
            if r.source == "llm" and r.sent >= start]
    return (min(done) - start) if done else None


def state_at(run: RunResult) -> Callable[[float], str]:
    """The breaker state the last poll before a moment (t0-relative) saw."""
    times = [x.t - run.t0 for x in run.samples]

    def at(t: float) -> str:
        i = bisect.bisect_right(times, t) - 1
        return run.samples[i].state if i >= 0 else "closed"
    return at


def calls_at(run: RunResult, t: float) -> int | None:
    """fake-llm's call counter as the last poll before `t` (t0-relative) read it."""
    times = [x.t - run.t0 for x in run.samples]
    i = bisect.bisect_right(times, t) - 1
    return run.samples[i].upstream_calls if i >= 0 else None


def answers_while_open(run: RunResult) -> list[Record]:
    """Fallback answers to requests sent while the circuit was open and answered while it
    still was: the fail-fast path. Requests in flight when it opened (they waited for the
    upstream) are left out; the rare trial call is not."""
    at = state_at(run)
    return [r for r in run.records if r.status == 200 and r.source != "llm"
            and r.circuit in OPEN_STATES and at(r.sent) in OPEN_STATES]


def analyze(run: RunResult, call_timeout_s: float | None = None) -> dict:
    s = run.scenario
    recs = run.records
    out: dict = {
        "key": run.key,
        "label": run.label,
        "scenario": s.name,
        "title": s.title,
        "breaker": run.breaker,
        "offered_rps": s.rate,
        "achieved_rps": len(recs) / s.seconds if s.seconds else 0.0,
        "seconds": s.seconds,
        **latency_summary(recs),
        **shares(recs),
        "wrk_errors": run.wrk.get("errors", {}),
        "missed_slots": run.wrk.get("missed_slots", 0),
        "upstream_calls": run.upstream_calls,
        "metrics_answers": run.answers,
        "transitions": run.transitions,
    }
    phases, opens, closes, llm_back = [], [], [], []
    previous_failing = False
    for p in run.phases:
        in_phase = [r for r in recs if p.start <= r.sent < p.end]
        entry = {"name": p.name, "failing": p.failing, "start_s": p.start, "end_s": p.end,
                 "upstream_calls": p.upstream_calls, **latency_summary(in_phase),
                 **shares(in_phase)}
        if p.failing and run.breaker:
            opened = time_to_open(run, p.start, p.end)
            entry["time_to_open_s"] = opened
            opens.append(opened)
            # Calls before the circuit opened (the threshold, plus calls made while successes
            # of calls started before the outage still reset the count) and after (trials).
            # The counter is exact at the phase's ends, polled in between: the first poll
            # after the opening splits the phase's calls.
            open_calls = calls_at(run, p.start + opened + 0.15) if opened is not None else None
            if open_calls is not None and p.calls_end:
                after = max(0, p.calls_end - open_calls)
                entry["calls_before_open"] = p.upstream_calls - after
                entry["calls_after_open"] = after
        if previous_failing and not p.failing:
            if run.breaker:
                entry["time_to_close_s"] = time_to_close(run, p.start, p.end)
                closes.append(entry["time_to_close_s"])
            entry["first_llm_answer_s"] = first_llm_answer(run, p.start)
            llm_back.append(entry["first_llm_answer_s"])
        phases.append(entry)
        previous_failing = p.failing
    out["phases"] = phases
    out["time_to_open_s"] = opens
    out["time_to_close_s"] = closes
    out["first_llm_answer_s"] = llm_back
    failing = [r for r in recs if any(p.failing and p.start <= r.sent < p.end
                                      for p in run.phases)]
    out["during_failure"] = {**latency_summary(failing), **shares(failing)}
    out["failing_phase_calls"] = [p.upstream_calls for p in run.phases if p.failing]
    out["answers_while_open"] = latency_summary(answers_while_open(run))
    out["shed"] = run.shed
    if call_timeout_s:
        # Requests that waited out (nearly) the whole call timeout.
        out["waited_timeout"] = sum(1 for r in recs if r.latency_ms >= 950 * call_timeout_s)
    out["calls_before_open"] = [p.get("calls_before_open") for p in phases if p["failing"]]
    out["calls_after_open"] = [p.get("calls_after_open") for p in phases if p["failing"]]
    return out


def per_second(run: RunResult) -> list[dict]:
    """One row per second of the run: latency percentiles, answers by level, upstream
    calls and the breaker state most seen (for the CSV and the picture)."""
    span = int(math.ceil(run.scenario.seconds))
    rows = []
    for second in range(span):
        in_bin = [r for r in run.records if second <= r.sent < second + 1]
        lat = [r.latency_ms for r in in_bin]
        states = [x.state for x in run.samples if second <= x.t - run.t0 < second + 1]
        calls = [x.upstream_calls for x in run.samples if second <= x.t - run.t0 < second + 1]
        row = {"second": second, "requests": len(in_bin),
               "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
               "max_ms": max(lat) if lat else None,
               "state": max(set(states), key=states.count) if states else "",
               "upstream_calls_total": calls[-1] if calls else None}
        for src in (*SOURCES, "unavailable"):
            row[src] = sum(1 for r in in_bin if r.source == src)
        rows.append(row)
    return rows
