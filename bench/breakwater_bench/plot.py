"""The pictures: latency, upstream calls and breaker state over time, breaker on beside off."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .analyze import per_second  # noqa: E402
from .runner import RunResult  # noqa: E402

SOURCE_COLORS = {"llm": "#1f77b4", "cache": "#2ca02c", "stale_cache": "#9467bd",
                 "excerpts": "#ff7f0e", "unavailable": "#d62728"}
STATE_COLORS = {"closed": "#2ca02c", "half_open": "#f2c300", "open": "#d62728",
                "forced_open": "#8c1a1a", "disabled": "#9e9e9e"}


def timelines(runs: dict[str, RunResult], scenarios: list[str], path: Path) -> Path | None:
    """One block of three rows per scenario (latency, upstream calls/s, breaker state),
    with the breaker on in the left column and off in the right."""
    scenarios = [s for s in scenarios if f"{s}-on" in runs or f"{s}-off" in runs]
    if not scenarios:
        return None
    ratios = [4, 1.3, 0.45] * len(scenarios)
    fig, axes = plt.subplots(len(ratios), 2, figsize=(16, 5.2 * len(scenarios)),
                             gridspec_kw={"height_ratios": ratios, "hspace": 0.12},
                             sharex="col", squeeze=False)
    for row, name in enumerate(scenarios):
        for col, mode in enumerate(("on", "off")):
            run = runs.get(f"{name}-{mode}")
            lat_ax, calls_ax, state_ax = (axes[3 * row + i][col] for i in range(3))
            if run is None:
                lat_ax.set_visible(False)
                continue
            _latency(lat_ax, run, first=(col == 0))
            _calls(calls_ax, run)
            _state(state_ax, run)
            lat_ax.set_title(f"{run.scenario.title} - breaker {mode}", fontsize=11, loc="left")
            if row == len(scenarios) - 1:
                state_ax.set_xlabel("seconds since start of load")
    handles = [Patch(color=c, label=s) for s, c in SOURCE_COLORS.items()]
    handles.append(Patch(color="#fde0e0", label="upstream failing"))
    handles += [Patch(color=c, label=f"circuit {s}") for s, c in STATE_COLORS.items()]
    fig.legend(handles=handles, loc="upper center", ncol=6, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.965))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _shade(ax, run: RunResult) -> None:
    for p in run.phases:
        if p.failing:
            ax.axvspan(p.start, p.end, color="#fde0e0", zorder=0, lw=0)


def _latency(ax, run: RunResult, first: bool) -> None:
    _shade(ax, run)
    for source, color in SOURCE_COLORS.items():
        pts = [r for r in run.records if r.source == source]
        if pts:
            ax.scatter([r.sent for r in pts], [max(r.latency_ms, 0.05) for r in pts], s=3,
                       color=color, alpha=0.35, lw=0, rasterized=True)
    rows = per_second(run)
    xs = [r["second"] + 0.5 for r in rows if r["p99_ms"] is not None]
    ax.plot(xs, [r["p99_ms"] for r in rows if r["p99_ms"] is not None], color="black",
            lw=1.2, label="p99 per second")
    ax.set_yscale("log")
    ax.set_ylim(0.1, 30_000)
    ax.grid(True, which="major", alpha=0.3)
    if first:
        ax.set_ylabel("latency (ms, log)")
    ax.legend(loc="upper right", fontsize=8)


def _calls(ax, run: RunResult) -> None:
    _shade(ax, run)
    pts = [(s.t - run.t0, s.upstream_calls) for s in run.samples]
    xs, ys = [], []
    for (t1, c1), (t2, c2) in zip(pts, pts[1:]):
        if t2 > t1:
            xs.append(t2)
            ys.append((c2 - c1) / (t2 - t1))
    # Smooth over 1 s (10 polls) so the line reads as a rate.
    smooth = [sum(ys[max(0, i - 9):i + 1]) / len(ys[max(0, i - 9):i + 1]) for i in range(len(ys))]
    ax.plot(xs, smooth, color="#444", lw=1)
    ax.set_ylabel("upstream\ncalls/s", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.text(0.995, 0.9, f"{run.upstream_calls} calls in all", transform=ax.transAxes,
            ha="right", va="top", fontsize=8)


def _state(ax, run: RunResult) -> None:
    samples = run.samples
    for a, b in zip(samples, samples[1:]):
        ax.axvspan(a.t - run.t0, b.t - run.t0, color=STATE_COLORS.get(a.state, "white"), lw=0)
    ax.set_yticks([])
    ax.set_ylabel("circuit", fontsize=9)
    ax.set_xlim(0, run.scenario.seconds)
