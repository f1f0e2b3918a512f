"""`python -m breakwater_bench.store_curve [--sizes 1000,10000,100000] --bin-dir D`: retrieval
of each notes store against the number of a user's notes — speed, size and quality.

For each size: the seeded corpus of `crates/breakwater/benches/corpus` (written by the
`retrieval_curve` example: a 20,000-word Zipf vocabulary, notes of 40–120 words, one user),
ingested by `breakwater ingest` (timed until it exits: searchable, merges done) into a fresh SQLite
file and a fresh PostgreSQL database (postgres://postgres@127.0.0.1:5432). Then:
- `breakwater serve` in excerpts-only mode (no LLM token, so every answer is the search),
  400 distinct 2–4-word questions from one client in sequence, and again paced at 100 req/s
  (open loop, 8 s, over reused HTTP/1.1 connections, beside `/healthz` the same way: the
  floor): answer p50/p99 over HTTP;
- the example's `measure`: the search alone, in process (p50/p99), and its quality on 200
  questions of 3 mid-frequency words of a target note (recall@5, MRR).
With `--users N` the store also holds N-1 other users with as many notes each (same
vocabulary, other seeds), ingested first: the measured user's figures in a crowd (the issue's
"1M notes across 100 users" is `--sizes 10000 --users 100`); their ingest is timed with the
measured user's, over all notes.
Prints a Markdown table; every process and database it makes is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .analyze import percentile
from .procs import HOST, clean_env, free_port, request, start
from .rawhttp import KeepAlive, paced

PG = "postgres://postgres@127.0.0.1:5432"
PACED_RATE = 100
PACED_SECONDS = 8


def psql(sql: str) -> None:
    subprocess.run(["psql", f"{PG}/postgres", "-qtAc", sql], check=True, timeout=120)


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def pg_size(db_name: str) -> int:
    out = subprocess.run(["psql", f"{PG}/{db_name}", "-qtAc",
                          "SELECT pg_total_relation_size('notes')"],
                         check=True, capture_output=True, text=True, timeout=60)
    return int(out.stdout.strip())


async def paced_run(port: int, questions: list[str] | None) -> list[float]:
    """Latencies at PACED_RATE over reused connections: of distinct questions, or of
    `/healthz` (`questions` None: the floor of this client and the HTTP stack, measured in
    the same run)."""
    pool = KeepAlive(port)

    async def one(i: int) -> float:
        # A distinct query each time, so the answer cache never answers.
        body = {"query": f"{questions[i % len(questions)]} p{i}", "user_id": "solo"} \
            if questions else None
        path = "/api/assistant/query" if questions else "/healthz"
        started = time.perf_counter()
        status = await pool.request(path, body)
        if status not in (200, 503):
            raise RuntimeError(f"status {status}")
        return (time.perf_counter() - started) * 1000
    try:
        return await paced(PACED_RATE, PACED_SECONDS, one)
    finally:
        pool.close()


def serve(bins: Path, work: Path, env: dict, questions: list[str]) -> dict:
    port = free_port()
    env = clean_env({**env, "BREAKWATER_ADDR": f"{HOST}:{port}", "RUST_LOG": "warn",
                     "BREAKWATER_CACHE_TTL_SECONDS": "0.001"})
    server = start("store-curve", [str(bins / "breakwater"), "--env-dir", str(work), "serve"],
                   env, work, port)
    try:
        for q in questions[:50]:  # warm the caches of the database and the code paths
            request(port, "POST", "/api/assistant/query", {"query": q, "user_id": "solo"})
        times = []
        for i, q in enumerate(questions):
            body = {"query": f"{q} x{i}", "user_id": "solo"}
            t = time.perf_counter()
            status, _ = request(port, "POST", "/api/assistant/query", body, timeout=30)
            times.append((time.perf_counter() - t) * 1000)
            if status not in (200, 503):
                raise RuntimeError(f"status {status}")
        floor = asyncio.run(paced_run(port, None))
        at_rate = asyncio.run(paced_run(port, questions))
        return {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99),
                "paced_p50_ms": percentile(at_rate, 50), "paced_p99_ms": percentile(at_rate, 99),
                "healthz_p99_ms": percentile(floor, 99)}
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(prog="breakwater_bench.store_curve", description=__doc__)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--bin-dir", default="target/release")
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--users", type=int, default=1,
                    help="users in the store, each with SIZE notes; the first is measured")
    args = ap.parse_args()
    bins = Path(args.bin_dir).resolve()
    example = bins / "examples" / "retrieval_curve"
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="store-curve-") as tmp:
            work = Path(tmp)
            subprocess.run([str(example), "write", str(work), str(size), str(args.users)],
                           check=True, timeout=1800)
            questions = (work / "questions.txt").read_text().split("\n")[:-1]
            text_bytes = size_of(work / "notes")
            db_name = f"bw_curve_{size}_{int(time.time())}"
            if "postgres" in args.stores:
                psql(f"CREATE DATABASE {db_name}")
            try:
                stores = {"sqlite": {"BREAKWATER_DB": str(work / "notes.db")},
                          "postgres": {"DATABASE_URL": f"{PG}/{db_name}"}}
                for name in args.stores.split(","):
                    env = stores[name]
                    t = time.perf_counter()
                    # The crowd first, the measured user last (`solo`).
                    for user in [f"u{u:03}" for u in range(1, args.users)] + ["solo"]:
                        subprocess.run([str(bins / "breakwater"), "--env-dir", str(work),
                                        "ingest", str(work / "notes" / user), "--user", user,
                                        "--no-progress"], env=clean_env(env), check=True,
                                       stdout=subprocess.DEVNULL, timeout=1200)
                    ingest_s = time.perf_counter() - t
                    if name == "sqlite":
                        index_bytes = size_of(work / "notes.db-index")
                        meta = json.loads((work / "notes.db-index" / "meta.json").read_text())
                        print(f"index segments after ingest: {len(meta['segments'])}",
                              file=sys.stderr, flush=True)
                        store_bytes = size_of(work / "notes.db") + index_bytes
                    else:
                        index_bytes = None
                        store_bytes = pg_size(db_name)
                    result = serve(bins, work, env, questions)
                    target = env.get("BREAKWATER_DB") or env["DATABASE_URL"]
                    measured = subprocess.run([str(example), "measure", str(size), target],
                                              check=True, capture_output=True, text=True,
                                              timeout=1200)
                    alone = json.loads(measured.stdout.strip().splitlines()[-1])
                    rows.append({"notes": size, "users": args.users, "store": name,
                                 "ingest_s": ingest_s,
                                 "notes_per_s": size * args.users / ingest_s, "text_bytes": text_bytes,
                                 "index_bytes": index_bytes, "store_bytes": store_bytes,
                                 **result, **{k: alone[k] for k in (
                                     "search_p50_ms", "search_p99_ms", "recall_at_5", "mrr")}})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            finally:
                if "postgres" in args.stores:
                    psql(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    print("| notes | store | answer p50 / p99 (1 client) | p50 / p99 at 100 req/s "
          "(`/healthz` p99) | search alone p50 / p99 | recall@5 | MRR | ingest | index / text |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        index = (f"{r['index_bytes'] / r['text_bytes']:.2f}×" if r["index_bytes"] is not None
                 else f"(table + indexes {r['store_bytes'] / r['text_bytes']:.2f}×)")
        crowd = f" × {r['users']} users" if r["users"] > 1 else ""
        print(f"| {r['notes']:,}{crowd} | {r['store']} | {r['p50_ms']:.2f} / {r['p99_ms']:.2f} ms "
              f"| {r['paced_p50_ms']:.2f} / {r['paced_p99_ms']:.2f} ms "
              f"({r['healthz_p99_ms']:.2f} ms) "
              f"| {r['search_p50_ms']:.2f} / {r['search_p99_ms']:.2f} ms "
              f"| {r['recall_at_5']:.3f} | {r['mrr']:.3f} "
              f"| {r['ingest_s']:.1f} s ({r['notes_per_s']:,.0f}/s) | {index} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
