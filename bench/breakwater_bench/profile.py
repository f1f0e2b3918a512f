"""Where the server's time goes: `perf record` around `breakwater serve` during one run,
summarised by component (SQLite/FTS5 retrieval, HTTP, async runtime, kernel, ...)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

# Symbol patterns -> the component a reader cares about; first match wins. Kernel symbols
# are named "[k] symbol"; without call graphs (no frame pointers in release builds) the
# kernel's file-read path is told apart by its functions.
COMPONENTS = (
    ("SQLite page reads: pread() copying pages from the OS page cache",
     r"pread|_copy_to_iter|copy_page_to_iter|filemap_|vfs_read|ext4_file_read|xas_load|atime"
     r"|fdget|fput|rw_verify_area|current_time|security_file|generic_file_read"),
    ("SQLite FTS5 (match, bm25, snippet tokenizing)", r"fts5|Fts5|porter|unicode61"),
    ("SQLite (VDBE, B-tree, page cache, WAL)",
     r"sqlite3|rusqlite|btree|Btree|vdbe|Vdbe|pager|Pager|pcache|Page|wal[A-Z]|moveTo|readDb"
     r"|getPage|balance|Cursor|cursor"),
    ("answer cache (moka, sha2)", r"moka|sha2|Sha256|sha256|crossbeam"),
    ("JSON (serde_json)", r"serde_json|serde::"),
    ("HTTP server/client (hyper, axum, reqwest)", r"hyper|axum|reqwest|http::|httparse|h2::|tower"),
    ("metrics and tracing", r"metrics|tracing|prometheus|sketches"),
    ("circuit breaker", r"breaker::"),
    ("async runtime (tokio)", r"tokio|mio::|parking_lot"),
    ("memory allocation", r"malloc|free|realloc|memcpy|memmove|memset|alloc::|_int_|cfree"),
    ("kernel: network (TCP on loopback, epoll)",
     r"^\[k\] .*(tcp_|sock|skb|ep_|epoll|inet|ip_|netif|dev_|loopback|net_|recv|send)"),
    ("kernel: scheduling, futex, wake-ups",
     r"^\[k\] .*(futex|schedule|finish_task_switch|_raw_spin|wake|enqueue|dequeue|pick_next"
     r"|update_curr|psi_)"),
    ("kernel: other (syscall entry, ...)", r"^\[k\]"),
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
            symbol = re.split(r"\s{2,}", m.group(4).strip())[0]  # drop perf's padding columns
            rows.append((float(m.group(1)), m.group(2), m.group(3), symbol))
    if not rows:
        return None
    buckets: dict[str, float] = {}
    for share, dso, kind, symbol in rows:
        name = f"[k] {symbol}" if kind == "[k]" or "kernel" in dso else f"{dso} {symbol}"
        component = next((c for c, pat in COMPONENTS if re.search(pat, name)), "other")
        buckets[component] = buckets.get(component, 0.0) + share
    lines = ["CPU samples of `breakwater serve` during an extra overhead run (breaker on) "
             "under `perf record -F 999 -g` (not the measured run: perf slows the server), by "
             "component; full list in `raw/perf-report.txt`:", "",
             "| component | share of CPU samples |", "|---|---|"]
    lines += [f"| {c} | {v:.1f} % |" for c, v in sorted(buckets.items(), key=lambda x: -x[1])]
    sqlite = sum(v for c, v in buckets.items() if c.startswith("SQLite"))
    lines += ["", f"The notes search (all SQLite rows above) takes {sqlite:.0f} % of the server's "
              "CPU samples."]
    lines += ["", "Top symbols:", "", "| share | binary | symbol |", "|---|---|---|"]
    for share, dso, _, symbol in sorted(rows, key=lambda r: -r[0])[:15]:
        lines.append(f"| {share:.1f} % | {dso} | `{symbol[:90]}` |")
    return "\n".join(lines)
