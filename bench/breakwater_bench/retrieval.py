"""Retrieval alone: the server's notes search, outside the server, to see its share of a
query's time.

Runs the SQL of `crates/breakwater/src/notes/search.rs` (with the match expression of
`notes/query.rs`; copied here, so keep them in step) through Python's `sqlite3` on the
benchmark's database, one query at a time, with the server's reader settings (memory-mapped
file, 32 MiB page cache) and with SQLite's defaults. Python's SQLite is not the server's
bundled one: the figures are indicative, not exact.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

from .analyze import percentile

STOPWORDS = set(
    "a about an and are as at be but by can could did do does for from had has have how i if "
    "in into is it its me my of on or our should so that the their them then there these they "
    "this to was we were what when where which who why will with would you your".split())

SEARCH_SQL = """
SELECT n.id, n.title, snippet(notes_fts, 1, '', '', '…', 32),
       -bm25(notes_fts, 2.0, 1.0, 0.0) AS score
FROM notes_fts JOIN notes AS n ON n.rowid = notes_fts.rowid
WHERE notes_fts MATCH ?1 AND n.user_id = ?2
ORDER BY score DESC, n.rowid DESC
LIMIT ?3"""
COUNT_SQL = "SELECT count(*) FROM notes_fts WHERE notes_fts MATCH ?1"

SETUPS = {
    "mmap + 32 MiB page cache (as the server)": ["PRAGMA mmap_size = 268435456",
                                                 "PRAGMA cache_size = -32768"],
    "default page cache": [],
}


def owner_token(user: str) -> str:
    """notes/schema.rs `owner_token`: the user's notes, as one full-text token."""
    return "u" + user.encode().hex() + "0"


def user_expression(words: str, user: str) -> str:
    """notes/search.rs: only this user's notes take part in the ranking."""
    return f'owner : "{owner_token(user)}" AND ({words})'


def match_expression(query: str) -> str | None:
    words: list[str] = []
    for word in re.split(r"[^\w]+|_", query):
        word = word.lower()
        if word and len(word) <= 64 and word not in STOPWORDS and word not in words:
            words.append(word)
    return " OR ".join(f'"{w}"' for w in words[:32]) or None


def probe(db: Path, bodies: Path, limit: int = 300, top_k: int = 5) -> dict:
    """ms per search for the first `limit` request bodies, under each page-cache setup."""
    asked = [json.loads(line) for line in bodies.read_text().splitlines()[:limit] if line]
    pairs = [(match_expression(b["query"]), b["user_id"]) for b in asked]
    pairs = [(user_expression(e, u), u) for e, u in pairs if e]
    out: dict = {"sqlite": sqlite3.sqlite_version, "queries": len(pairs), "setups": {}}
    try:
        for name, pragmas in SETUPS.items():
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                for pragma in pragmas:
                    conn.execute(pragma)
                for expr, user in pairs:  # one pass to warm the cache, as the server is
                    conn.execute(SEARCH_SQL, (expr, user, top_k)).fetchall()
                times = []
                for expr, user in pairs:
                    started = time.perf_counter()
                    conn.execute(SEARCH_SQL, (expr, user, top_k)).fetchall()
                    times.append((time.perf_counter() - started) * 1000)
                out["setups"][name] = {"mean_ms": sum(times) / len(times),
                                       "p50_ms": percentile(times, 50),
                                       "p99_ms": percentile(times, 99)}
                if "matches_mean" not in out:
                    counts = [conn.execute(COUNT_SQL, (e,)).fetchone()[0] for e, _ in pairs]
                    out["matches_mean"] = sum(counts) / len(counts)
                    out["matches_p50"] = percentile(counts, 50)
            finally:
                conn.close()
    except sqlite3.Error as e:  # e.g. a Python whose SQLite lacks FTS5
        out["error"] = str(e)
    return out


def describe(result: dict | None) -> str | None:
    if not result or not result.get("setups"):
        return None
    lines = [f"Retrieval alone (the server's search SQL through Python's SQLite "
             f"{result['sqlite']}, {result['queries']} of the benchmark's questions, one at a "
             f"time; a question matches {result['matches_mean']:.0f} of its user's notes on "
             f"average, median {result['matches_p50']}):", "",
             "| SQLite settings | mean ms | p50 ms | p99 ms |", "|---|---|---|---|"]
    for name, r in result["setups"].items():
        lines.append(f"| {name} | {r['mean_ms']:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
    return "\n".join(lines)
