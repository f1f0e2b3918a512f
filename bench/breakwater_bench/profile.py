"""Where the server's time goes: `perf record` around `breakwater serve` during one run,
summarised by component (SQLite/FTS5 retrieval, HTTP, async runtime, kernel, ...)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

# Symbol patterns -> the component a reader cares about; first match wins.
COMPONENTS = (
    ("SQLite FTS5 search (retrieval)", r"fts5|sqlite3Fts|Fts5|porter|unicode61"),
    ("SQLite (other: VDBE, B-tree, sorter)", r"sqlite3|rusqlite|btree|Btree|vdbe|pager|Pager"),
    ("answer cache (moka, sha2)", r"moka|sha2|Sha256|sha256|crossbeam"),
    ("JSON (serde_json)", r"serde_json|serde::"),
    ("HTTP server/client (hyper, axum, reqwest, h2)", r"hyper|axum|reqwest|http::|httparse|h2::|tower"),
    ("metrics and tracing", r"metrics|tracing|prometheus|sketches"),
    ("circuit breaker", r"breaker::"),
    ("async runtime (tokio)", r"tokio|mio::|parking_lot"),
    ("memory allocation", r"malloc|free|realloc|memcpy|memmove|memset|alloc::|_int_|cfree"),
    ("kernel (syscalls, network, scheduling)", r"^\[k\]|\[kernel|entry_SYSCALL|tcp_|__x64|ksys_|do_syscall"),
)


def perf_wrap(raw_dir: Path) -> list[str] | None:
    if not shutil.which("perf"):
        return None
    return ["perf", "record", "-F", "999", "-g", "-o", str(raw_dir / "perf.data"), "--"]


def summarise(raw_dir: Path) -> str | None:
    data = raw_dir / "perf.data"
    if not data.exists():
        return None
    try:
        text = subprocess.run(
            ["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none",
             "--sort", "dso,symbol", "--percent-limit", "0.01"],
            capture_output=True, text=True, timeout=300).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return f"perf report failed: {e}"
    (raw_dir / "perf-report.txt").write_text(text)
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+(\[[.k]\])\s+(.*)$", line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()))
    if not rows:
        return None
    buckets: dict[str, float] = {}
    for share, dso, kind, symbol in rows:
        name = f"[k] {symbol}" if kind == "[k]" or "kernel" in dso else f"{dso} {symbol}"
        component = next((c for c, pat in COMPONENTS if re.search(pat, name)), "other")
        buckets[component] = buckets.get(component, 0.0) + share
    lines = ["CPU samples of `breakwater serve` during the overhead run (breaker on), by "
             "component (`perf record -F 999 -g`; full list in `raw/perf-report.txt`):", "",
             "| component | share of CPU samples |", "|---|---|"]
    lines += [f"| {c} | {v:.1f} % |" for c, v in sorted(buckets.items(), key=lambda x: -x[1])]
    lines += ["", "Top symbols:", "", "| share | binary | symbol |", "|---|---|---|"]
    for share, dso, _, symbol in sorted(rows, key=lambda r: -r[0])[:15]:
        lines.append(f"| {share:.1f} % | {dso} | `{symbol[:90]}` |")
    return "\n".join(lines)
