"""`python -m breakwater_bench.chain OUT_DIR [--quick] [--bin-dir D]`: an outage of the
primary upstream with a healthy secondary, at 50 req/s.

Two fake-llm upstreams (the primary in chat mode, the secondary in text mode, both answering
in 100 ms) listed in a `BREAKWATER_CONFIG` file; the primary's breaker: threshold 5, reset
5 s, call timeout 2 s. The load is paced open-loop at 50 req/s, each request a question
never asked before (so no answer comes from the cache), through five phases: healthy, the
primary answering 503, healthy, the primary hanging (never answering), healthy. Per phase:
the share of `llm` answers, who answered, and the latency percentiles; the added latency
is the outage phase's minus the first healthy phase's. Goal: 100 % `llm` answers.

Writes `chain.json` and `chain.md` into OUT_DIR and prints the Markdown.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from .analyze import percentile
from .procs import (HOST, Binaries, ServerConfig, bench_args, provenance, request, set_fault,
                    start, start_fake_llm, free_port)
from .rawhttp import TOOL, paced, posted

USERS = [f"user{i}" for i in range(10)]
UPSTREAM = {"latency_ms": 100}


async def post_json(port: int, path: str, body: dict, timeout: float = 30.0) -> dict:
    sent = time.perf_counter()
    async with posted(port, path, body, timeout) as (status, reader):
        payload = await asyncio.wait_for(reader.read(), timeout)
    return {"status": status, "ms": (time.perf_counter() - sent) * 1000,
            "body": json.loads(payload) if payload else {}}


def run_phase(port: int, seconds: float, offset: int) -> list[dict]:
    def make(i: int):
        body = {"query": f"breaker question {offset + i}", "user_id": USERS[i % len(USERS)]}
        return post_json(port, "/api/assistant/query", body)

    return asyncio.run(paced(50, seconds, make))


def summarise(name: str, results: list[dict]) -> dict:
    who: dict[str, int] = {}
    for r in results:
        meta = r["body"].get("metadata", {})
        source = meta.get("source") or f"http {r['status']}"
        key = source + (f" ({meta['upstream']})" if meta.get("upstream") else "")
        who[key] = who.get(key, 0) + 1
    llm = sum(n for k, n in who.items() if k.startswith("llm"))
    ms = [r["ms"] for r in results]
    return {"phase": name, "requests": len(results), "llm_share": llm / max(1, len(results)),
            "answered_by": who, "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
            "max_ms": max(ms)}


def main() -> int:
    args = bench_args("breakwater_bench.chain", __doc__, "bench/chain-outage.sh")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bins = Binaries.in_dir(args.bin_dir)
    meta = provenance(args.command, TOOL)
    scale = 0.3 if args.quick else 1.0
    phases = [("healthy", None, 10), ("primary 503", {"mode": "error", "status": 503}, 20),
              ("healthy again", None, 10), ("primary hangs", {"mode": "hang"}, 20),
              ("healthy at the end", None, 10)]
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:
        work = Path(tmp)
        primary, secondary = start_fake_llm(bins, work), None
        procs = [primary]
        try:
            secondary = start_fake_llm(bins, work)
            procs.append(secondary)
            for fake in (primary, secondary):
                set_fault(fake.port, UPSTREAM)
            (work / "upstreams.toml").write_text(f"""
[[upstream]]
name = "primary"
mode = "chat"
url = "http://{HOST}:{primary.port}/v1/chat/completions"
model = "big"
fail_threshold = 5
reset_timeout_seconds = 5
call_timeout_seconds = 2

[[upstream]]
name = "secondary"
mode = "text"
url = "http://{HOST}:{secondary.port}/models/small"
model = "small"
""")
            config = ServerConfig(db=work / "notes.db", upstream_port=primary.port,
                                  breaker_enabled=True, fail_threshold=5, call_timeout_s=2,
                                  reset_timeout_s=5, cache_ttl_s=30,
                                  extra={"BREAKWATER_CONFIG": str(work / "upstreams.toml")})
            port = free_port()
            bw = start("breakwater", [str(bins.breakwater), "--env-dir", str(work), "serve"],
                       config.env(port), work, port)
            procs.append(bw)
            for user in USERS:
                request(bw.port, "POST", "/api/notes", {
                    "user_id": user, "title": "Circuit breakers",
                    "body": "A breaker opens after five failures in a row and fails fast."})
            run_phase(bw.port, 1, 900_000)  # warm up
            rows, offset = [], 0
            for name, fault, seconds in phases:
                set_fault(primary.port, {**UPSTREAM, **(fault or {})})
                results = run_phase(bw.port, seconds * scale, offset)
                offset += len(results)
                rows.append(summarise(name, results))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        finally:
            for p in reversed(procs):
                p.stop()
    result = {"meta": meta, "phases": rows}
    (out_dir / "chain.json").write_text(json.dumps(result, indent=2))
    md = report(result)
    (out_dir / "chain.md").write_text(md)
    print(md)
    outages = [r for r in rows if not r["phase"].startswith("healthy")]
    return 0 if all(r["llm_share"] == 1.0 for r in outages) else 1


def report(r: dict) -> str:
    base = r["phases"][0]
    lines = [
        f"Run: `{r['meta']['command']}`, {r['meta']['date']}, commit {r['meta']['commit']}, "
        f"{r['meta']['machine']}.", "",
        "| phase, 50 req/s | requests | `llm` answers | answered by | p50 | p99 | p99 added | max |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in r["phases"]:
        who = ", ".join(f"{k}: {v}" for k, v in sorted(p["answered_by"].items()))
        lines.append(
            f"| {p['phase']} | {p['requests']} | {p['llm_share']:.1%} | {who} "
            f"| {p['p50_ms']:.0f} ms | {p['p99_ms']:.0f} ms "
            f"| {p['p99_ms'] - base['p99_ms']:+.0f} ms | {p['max_ms']:.0f} ms |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
