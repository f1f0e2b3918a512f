"""`python -m breakwater_bench.streams OUT_DIR [--quick] [--bin-dir D]`: streamed answers
under load.

1. Time to first piece. fake-llm streams every answer in 20 pieces (its first one 50 ms
   after the request, then one every 10 ms). One client alternates two kinds of request,
   each at 50 streams/s, paced open-loop in shuffled slots (`rawhttp.shuffled`): straight
   to fake-llm (`stream: true` chat completions: the upstream's own first token) and
   through `breakwater serve` (`"stream": true`: its first `delta`). The time breakwater adds to the first piece is
   the difference of the two distributions at p50 and p99 (same run, same client, same
   machine; breakwater's share includes its notes search, on 1 note per user here). Again
   with each stream first net of fake-llm's own wait for its first piece, which it keeps
   per call (`GET /admin/first-pieces`): its 50 ms latency is rounded up to its timer's
   millisecond, an amount that differs from one call to the next and, with a paced client,
   by the phase of the call's arrival, so it is taken out stream by stream.
   `BENCH_PIN=1`: the client and fake-llm on core 0, breakwater on the others.
   `BENCH_NO_HALT=1` (a diagnosis): no core halts while phases 1 and 3 run
   (`procs.no_halt`), to tell whether the VM's wake-up of an idle core is in the tail.
2. The fault matrix. For each fault a fresh server whose circuit never opens (so every
   stream meets the fault), idle deadline 0.5 s; for each stream fault of fake-llm, 50
   streams/s. Every stream is classified by what the client saw; an answer presented as a
   complete LLM answer (`done` with source `llm`, no `fallback`) that does not hold all 20
   pieces is a truncated answer passed off as whole: the goal is zero.
3. Where the time goes: one request at a time, fake-llm answering at once (`probe_phase`).

Writes `streams.json` and `streams.md` into OUT_DIR and prints the Markdown.
The client is `bench-client` (`client.py`: Rust, one thread, HTTP/1.0 sockets), which
stamps each first piece when the read that brought it returns.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

from .analyze import percentile
from .client import TOOL, req, run_plan, slots
from .rawhttp import shuffled
from .procs import (Binaries, Process, ServerConfig, bench_args, get_json, no_halt,
                    pin_server, provenance, request, set_fault, start_breakwater, start_fake_llm)

PIECES = 20
NEVER_OPENS = 1_000_000  # a threshold no phase reaches: every stream meets its fault
UPSTREAM = {"latency_ms": 50, "stream": {"chunks": PIECES, "chunk_delay_ms": 10}}
USERS = [f"user{i}" for i in range(10)]
FAULTS = [
    ("ok", {"mode": "ok"}),
    ("drip 30 ms", {"mode": "ok", "chunk_delay_ms": 30}),
    ("cut after 5", {"mode": "cut", "after_chunks": 5}),
    ("stall after 5", {"mode": "stall", "after_chunks": 5}),
    ("malformed after 5", {"mode": "malformed", "after_chunks": 5}),
    ("error after 5", {"mode": "error", "after_chunks": 5}),
    ("no end marker", {"mode": "no_end"}),
]


def classify(result: dict) -> str:
    """What the client was told, from its events."""
    if result["status"] == 0:
        return f"no response ({result['error']})"
    if result["status"] != 200:
        return f"http {result['status']}"
    names = [n for n, _ in result["events"]]
    if not names:
        return "empty"
    last_name, last = result["events"][-1]
    if last_name == "error":
        return "error event"
    if last_name != "done":
        return "no done (broken stream)"
    source = json.loads(last)["metadata"]["source"]
    if "fallback" in names:
        return f"fallback mid-stream → {source}"
    if source == "llm":
        return "complete llm" if names.count("delta") == PIECES else "TRUNCATED, presented whole"
    return f"whole {source}"


def probe_phase(bins: Binaries, fake_port: int, bw_port: int, n: int) -> dict:
    """One request at a time on an otherwise idle machine, an upstream answering at once:
    where the added time goes. Each round: `/healthz`, a stream straight from fake-llm, a
    streamed miss through breakwater (search, prompt, upstream call), then the same
    question again (a streamed cache hit: no search, no upstream)."""
    set_fault(fake_port, {"stream": {"chunks": PIECES}})
    keys = ("healthz", "direct", "miss", "hit")
    plan = []
    for i in range(n + 50):
        chat = {"model": "bench", "stream": True,
                "messages": [{"role": "user", "content": f"probe {i}"}]}
        ask = {"query": f"breaker probe {i}", "user_id": USERS[0], "stream": True}
        plan += [req(bw_port, "/healthz"), req(fake_port, "/v1/chat/completions", chat),
                 req(bw_port, "/api/assistant/query", ask),
                 req(bw_port, "/api/assistant/query", ask)]
    outcomes = run_plan(bins, plan, rate=None)
    set_fault(fake_port, UPSTREAM)
    times: dict[str, list[float]] = {k: [] for k in keys}
    for j, o in enumerate(outcomes[50 * len(keys):]):  # the first rounds warm connections, caches
        key = keys[j % len(keys)]
        times[key].append(o["total_ms"] if key == "healthz" else o["first_ms"])
    return {k: {"p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99)} for k, v in times.items()}


def first_token_phase(bins: Binaries, fake_port: int, bw_port: int, seconds: float,
                      label: str) -> dict:
    """50 streams/s straight to fake-llm and 50 through breakwater, shuffled; `label` keeps
    each phase's questions its own (a warm-up's answers must not be cache hits later)."""
    kind = shuffled(("direct", "breakwater"))
    ports = {"direct": fake_port, "breakwater": bw_port}
    asks = [ask_stream(kind(i), f"{label}-{i}", ports[kind(i)], USERS[i % len(USERS)])
            for i in range(slots(100, seconds))]  # 100 requests/s in all
    take_waits(fake_port)  # what earlier phases left
    outcomes = run_plan(bins, [r for _, r in asks], rate=100)
    results = [(t, o) for (t, _), o in zip(asks, outcomes)]
    return first_piece_figures(results, take_waits(fake_port), ("breakwater",))


def ask_stream(kind: str, suffix: str, port: int, user: str) -> tuple[tuple[str, str], dict]:
    """One stream to `port`, tagged `(kind, question)`, as a request of a plan: a chat
    completion straight to fake-llm when `kind` is direct, else a question to breakwater.
    The question ends each prompt, so fake-llm's record of its own wait can be matched to
    the stream (`take_waits`)."""
    if kind == "direct":
        question = f"direct question {suffix}"
        body = {"model": "bench", "stream": True,
                "messages": [{"role": "user", "content": question}]}
        return (kind, question), req(port, "/v1/chat/completions", body)
    question = f"breaker question {suffix}"
    body = {"query": question, "user_id": user, "stream": True}
    return (kind, question), req(port, "/api/assistant/query", body)


QUESTION = re.compile(r"\w+ question [\w-]+$")


def take_waits(fake_port: int) -> dict[str, float]:
    """fake-llm's own wait for each streamed call's first piece since the last read (ms),
    by the question its prompt ends with; the read clears them."""
    waits = {}
    for piece in get_json(fake_port, "/admin/first-pieces"):
        found = QUESTION.search(piece["prompt_tail"])
        if found:
            waits[found.group(0)] = piece["waited_us"] / 1000
    return waits


def first_piece_figures(results: list, waits: dict[str, float], sides: tuple[str, ...]) -> dict:
    """The time to first piece of each kind, and what each side adds to the direct streams:
    - `added_*`: the difference of the two distributions, as the client saw them;
    - `net_added_*`: the same, each stream first net of fake-llm's own wait for its first
      piece (its latency, rounded up to its timer's millisecond, and its scheduling), so
      that what the upstream spent on one call and not on another drops out, stream by
      stream; what is left is the client's, breakwater's and the network's share."""
    out: dict = {}
    for kind in ("direct", *sides):
        firsts, nets = [], []
        for (k, question), r in results:
            if k != kind or r["first_ms"] is None:
                continue
            firsts.append(r["first_ms"])
            if question in waits:  # a cache hit has no upstream call
                nets.append(r["first_ms"] - waits[question])
        out[kind] = {"n": len(firsts), "p50_ms": percentile(firsts, 50),
                     "p99_ms": percentile(firsts, 99), "net_n": len(nets),
                     "net_p50_ms": percentile(nets, 50), "net_p99_ms": percentile(nets, 99)}
    direct = out["direct"]
    for side in sides:
        o = out[side]
        for q in ("p50", "p99"):
            o[f"added_{q}_ms"] = o[f"{q}_ms"] - direct[f"{q}_ms"]
            o[f"net_added_{q}_ms"] = o[f"net_{q}_ms"] - direct[f"net_{q}_ms"]
    return out


def fault_phase(bins: Binaries, fake_port: int, fresh_server, seconds: float) -> list[dict]:
    """Each fault on a fresh server: an empty cache, a closed circuit, zeroed counters."""
    rows = []
    for label, stream in FAULTS:
        bw = fresh_server()
        bw_port = bw.port
        set_fault(fake_port, {**UPSTREAM, "stream": {**UPSTREAM["stream"], **stream}})
        base = len(rows) * 100_000
        plan = [req(bw_port, "/api/assistant/query",
                    {"query": f"breaker fault {base + i}", "user_id": USERS[i % len(USERS)],
                     "stream": True})
                for i in range(slots(50, seconds))]
        results = run_plan(bins, plan, rate=50)
        counts: dict[str, int] = {}
        for r in results:
            kind = classify(r)
            counts[kind] = counts.get(kind, 0) + 1
        totals = [r["total_ms"] for r in results]
        bw.stop()
        rows.append({"fault": label, "streams": len(results), "outcomes": counts,
                     "truncated_as_complete": counts.get("TRUNCATED, presented whole", 0),
                     "p99_total_ms": percentile(totals, 99)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def seeded_server(bins: Binaries, work: Path, name: str, fake_port: int, threshold: int = 5,
                  extra: dict[str, str] | None = None, wrap: list[str] | None = None) -> Process:
    """`breakwater serve` (under `wrap`, if any) on its own database `name`.db in front of
    fake-llm, with one note for each of USERS."""
    config = ServerConfig(db=work / f"{name}.db", upstream_port=fake_port, breaker_enabled=True,
                          fail_threshold=threshold, call_timeout_s=2, reset_timeout_s=10,
                          cache_ttl_s=30, extra=extra or {})
    bw = start_breakwater(bins, work, config, wrap)
    for user in USERS:
        request(bw.port, "POST", "/api/notes", {
            "user_id": user, "title": "Circuit breakers",
            "body": "A breaker opens after five failures in a row and fails fast."})
    return bw


def main() -> int:
    args = bench_args("breakwater_bench.streams", __doc__, "bench/run.sh --streams")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bins = Binaries.in_dir(args.bin_dir)
    wrap, pinned = pin_server()
    meta = {**provenance(args.command, TOOL), "pinned": pinned}
    ttfb_s, fault_s = (8, 3) if args.quick else (30, 8)
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        work = Path(tmp)
        fake = start_fake_llm(bins, work)
        servers = []
        try:
            set_fault(fake.port, UPSTREAM)

            def server(threshold: int, extra: dict[str, str]):
                bw = seeded_server(bins, work, f"notes{len(servers)}", fake.port, threshold,
                                   extra, wrap)
                servers.append(bw)
                return bw

            bw = server(5, {})
            with no_halt() as meta["no_halt"]:
                # Warm both paths (connections, code) before measuring.
                first_token_phase(bins, fake.port, bw.port, 1, "warm")
                ttfb = first_token_phase(bins, fake.port, bw.port, ttfb_s, "main")
                print(json.dumps(ttfb), file=sys.stderr, flush=True)
                probe = probe_phase(bins, fake.port, bw.port, 100 if args.quick else 500)
                print(json.dumps(probe), file=sys.stderr, flush=True)
            bw.stop()
            faults = fault_phase(bins, fake.port, lambda: server(NEVER_OPENS, {
                "HF_STREAM_IDLE_TIMEOUT_SECONDS": "0.5"}), fault_s)
        finally:
            for s in servers:
                s.stop()
            fake.stop()
    result = {"meta": meta, "first_token": ttfb, "probe": probe, "faults": faults}
    (out_dir / "streams.json").write_text(json.dumps(result, indent=2))
    md = report(result)
    (out_dir / "streams.md").write_text(md)
    print(md)
    return 0 if all(r["truncated_as_complete"] == 0 for r in faults) else 1


def report(r: dict) -> str:
    t = r["first_token"]
    b = t["breakwater"]
    lines = [
        f"Run: `{r['meta']['command']}`, {r['meta']['date']}, commit {r['meta']['commit']}, "
        f"{r['meta']['machine']}"
        + (f"; pinned: {r['meta']['pinned']}" if r["meta"].get("pinned") else "")
        + (f"; {r['meta']['no_halt']}" if r["meta"].get("no_halt") else "") + ".", "",
        "| time to first piece, 50 streams/s | n | p50 | p99 |", "| --- | --- | --- | --- |",
        f"| fake-llm directly (the upstream's own first token) | {t['direct']['n']} "
        f"| {t['direct']['p50_ms']:.2f} ms | {t['direct']['p99_ms']:.2f} ms |",
        f"| through breakwater (first `delta`) | {b['n']} "
        f"| {b['p50_ms']:.2f} ms | {b['p99_ms']:.2f} ms |",
        f"| **added by breakwater** | | **{b['added_p50_ms']:.2f} ms** "
        f"| **{b['added_p99_ms']:.2f} ms** (goal ≤ 1 ms) |", "",
        "| the same streams, each net of fake-llm's own wait for its first piece | n | p50 "
        "| p99 |", "| --- | --- | --- | --- |",
        f"| fake-llm directly | {t['direct']['net_n']} | {t['direct']['net_p50_ms']:.2f} ms "
        f"| {t['direct']['net_p99_ms']:.2f} ms |",
        f"| through breakwater | {b['net_n']} | {b['net_p50_ms']:.2f} ms "
        f"| {b['net_p99_ms']:.2f} ms |",
        f"| **added by breakwater** | | **{b['net_added_p50_ms']:.2f} ms** "
        f"| **{b['net_added_p99_ms']:.2f} ms** (goal ≤ 1 ms) |", "",
        "| one request at a time, upstream answering at once | p50 | p99 |", "| --- | --- | --- |",
    ]
    probe_rows = [("`GET /healthz` round trip (the client's and server's floor)", "healthz"),
                  ("first piece straight from fake-llm", "direct"),
                  ("first `delta` of a streamed miss (search, prompt, upstream)", "miss"),
                  ("first `delta` of a streamed cache hit (no search, no upstream)", "hit")]
    for label, key in probe_rows:
        p = r["probe"][key]
        lines.append(f"| {label} | {p['p50_ms']:.2f} ms | {p['p99_ms']:.2f} ms |")
    lines += [
        "",
        "| upstream stream fault, 50 streams/s | streams | what the clients were told "
        "| truncated answers presented whole | p99 whole stream |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in r["faults"]:
        told = ", ".join(f"{k}: {v}" for k, v in sorted(row["outcomes"].items()))
        lines.append(f"| {row['fault']} | {row['streams']} | {told} "
                     f"| {row['truncated_as_complete']} | {row['p99_total_ms']:.0f} ms |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
