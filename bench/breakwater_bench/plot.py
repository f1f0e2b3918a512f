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
    """One block per scenario: latency, upstream calls/s and breaker state over time, with
    the breaker on in the left column and off in the right."""
    scenarios = [s for s in scenarios if f"{s}-on" in runs or f"{s}-off" in runs]
    if not scenarios:
        return None
    # Scenarios run with the breaker on only get one column.
    modes = ("on", "off") if any(f"{s}-off" in runs for s in scenarios) else ("on",)
    width = 16 if len(modes) == 2 else 9
    fig = plt.figure(figsize=(width, 5.6 * len(scenarios) + 0.6), layout="constrained")
    blocks = fig.subfigures(len(scenarios), 1, squeeze=False)[:, 0]
    for block, name in zip(blocks, scenarios):
        axes = block.subplots(3, len(modes), sharex="col", sharey="row", squeeze=False,
                              gridspec_kw={"height_ratios": [4, 1.4, 0.45]})
        for col, mode in enumerate(modes):
            run = runs.get(f"{name}-{mode}")
            if run is None:
                for ax in axes[:, col]:
                    ax.set_visible(False)
                continue
            _latency(axes[0][col], run, first=(col == 0))
            _calls(axes[1][col], run, first=(col == 0))
            _state(axes[2][col], run, first=(col == 0))
            axes[0][col].set_title(f"{run.scenario.title} - breaker {mode}", fontsize=11,
                                   loc="left")
            axes[2][col].set_xlabel("seconds since start of load")
    handles = [Patch(color=c, label=f"answer: {s}") for s, c in SOURCE_COLORS.items()]
    handles.append(Patch(color="#fde0e0", label="upstream failing"))
    handles += [Patch(color=c, label=f"circuit {s}") for s, c in STATE_COLORS.items()
                if s != "forced_open"]
    fig.legend(handles=handles, loc="outside upper center", ncol=5 if len(modes) == 2 else 3,
               fontsize=9, frameon=False)
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
            ax.scatter([r.sent for r in pts], [max(r.latency_ms, 0.05) for r in pts], s=5,
                       color=color, alpha=0.5, lw=0, rasterized=True)
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


def _calls(ax, run: RunResult, first: bool) -> None:
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
    if first:
        ax.set_ylabel("upstream\ncalls/s", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.text(0.005, 0.92, f"{run.upstream_calls} upstream calls in all", transform=ax.transAxes,
            ha="left", va="top", fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1})


def _state(ax, run: RunResult, first: bool) -> None:
    samples = run.samples
    for a, b in zip(samples, samples[1:]):
        ax.axvspan(a.t - run.t0, b.t - run.t0, color=STATE_COLORS.get(a.state, "white"), lw=0)
    ax.set_yticks([])
    if first:
        ax.set_ylabel("circuit", fontsize=9)
    ax.set_xlim(0, run.scenario.seconds)
