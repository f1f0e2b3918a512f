"""`python -m breakwater_bench.store_curve [--sizes 1000,10000] --bin-dir D`: search latency
of each notes store against the number of a user's notes.

For each size: a seeded corpus of that many notes for one user, ingested (timed) into a
fresh SQLite file and a fresh PostgreSQL database (postgres://postgres@127.0.0.1:5432),
then `breakwater serve` in excerpts-only mode (no LLM token, so every answer is the
search) asked 400 questions in sequence by one client; p50/p99 per store, side by side.
Prints a Markdown table; every process and database it makes is removed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import corpus
from .analyze import percentile
from .procs import HOST, clean_env, free_port, request, start

PG = "postgres://postgres@127.0.0.1:5432"


def psql(sql: str) -> None:
    subprocess.run(["psql", f"{PG}/postgres", "-qtAc", sql], check=True, timeout=120)


def measure(bins: Path, work: Path, env: dict[str, str], questions: list[str]) -> dict:
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
            # A distinct query each time, so the answer cache never answers.
            body = {"query": f"{q} x{i}", "user_id": "solo"}
            t = time.perf_counter()
            status, _ = request(port, "POST", "/api/assistant/query", body, timeout=30)
            times.append((time.perf_counter() - t) * 1000)
            if status not in (200, 503):
                raise RuntimeError(f"status {status}")
        return {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(prog="breakwater_bench.store_curve", description=__doc__)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--bin-dir", default="target/release")
    args = ap.parse_args()
    bins = Path(args.bin_dir).resolve()
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="store-curve-") as tmp:
            work = Path(tmp)
            questions = corpus.write_corpus(work / "notes", size, ["solo"], 400)
            db_name = f"bw_curve_{size}_{int(time.time())}"
            psql(f"CREATE DATABASE {db_name}")
            try:
                stores = {"sqlite": {"BREAKWATER_DB": str(work / "notes.db")},
                          "postgres": {"DATABASE_URL": f"{PG}/{db_name}"}}
                for name, env in stores.items():
                    t = time.perf_counter()
                    subprocess.run([str(bins / "breakwater"), "--env-dir", str(work), "ingest",
                                    str(work / "notes" / "solo"), "--user", "solo",
                                    "--no-progress"], env=clean_env(env), check=True,
                                   stdout=subprocess.DEVNULL, timeout=1200)
                    ingest_s = time.perf_counter() - t
                    result = measure(bins, work, env, questions)
                    rows.append({"notes": size, "store": name, "ingest_s": ingest_s,
                                 "notes_per_s": size / ingest_s, **result})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            finally:
                psql(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    print("| notes for the user | store | search p50 | p99 | ingest |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['notes']:,} | {r['store']} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.1f} ms "
              f"| {r['ingest_s']:.1f} s ({r['notes_per_s']:,.0f} notes/s) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
