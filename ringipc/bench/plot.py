"""``--plot``: figures that answer "how much faster is ringipc than what I use now?".

One figure per scenario.  Throughput-like scenarios (1 -> 1 per message size,
MPMC, fan-out) are horizontal bars of the ratio to the scenario's baseline
(mp.Queue), one panel per message size, best at the top, each bar labelled
with its ratio; latency is its own figure, median and p99 side by side in
microseconds; locks, ns per acquire+release.  Colour says what a bar is:
ringipc's facilities, the fastest peer of the panel, other peers, and the
baseline; the names are on the axis, so the rows stay readable with forty of
them.  Each figure is written as PNG and SVG.

Figures are built on ``matplotlib.figure.Figure`` (no pyplot, no global state,
never a window), so tests can look at their panels, bars and labels.
"""
import os
from typing import Any, Callable, Dict, List

from ringipc.bench.adapters import BASELINE
from ringipc.bench.fanout import FANOUT_BASELINE, is_fanout, title as fanout_title
from ringipc.bench.runner import LATENCY, MPMC, THROUGHPUT

OURS, BEST_PEER, PEER, BASE_COLOR, FAILED = "#1f77b4", "#ff7f0e", "#b8b8b8", "#222222", "#d62728"
LEGEND = [(OURS, "ringipc"), (BEST_PEER, "fastest peer"), (PEER, "other peers"), (BASE_COLOR, "baseline")]
TITLES = {
    THROUGHPUT: "Throughput, 1 producer -> 1 consumer",
    MPMC: "Throughput, 2 producers -> 2 consumers",
}


class PlotUnavailable(RuntimeError):
    pass


def _matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotUnavailable(
            f"--plot needs matplotlib ({exc}); install it with: pip install 'ringipc[bench]'") from exc
    return Figure


def is_ours(name: str) -> bool:
    return name.startswith("ringipc")


def colours(rows: Any, baseline: Any, key: Any) -> List[str]:
    """A colour per row: ringipc, the fastest peer (by ``key``, larger is better), other peers, baseline."""
    peers = [s for s in rows if s.ok and not is_ours(s.facility) and s.facility != baseline]
    best = max(peers, key=key).facility if peers else None
    out = []
    for s in rows:
        if not s.ok:
            out.append(FAILED)
        elif s.facility == baseline:
            out.append(BASE_COLOR)
        elif is_ours(s.facility):
            out.append(OURS)
        else:
            out.append(BEST_PEER if s.facility == best else PEER)
    return out


def _legend(fig: Any, with_failed: bool = False) -> None:
    from matplotlib.patches import Patch

    entries = LEGEND + ([(FAILED, "FAILED")] if with_failed else [])
    fig.legend(handles=[Patch(color=c, label=t) for c, t in entries], loc="lower center", ncol=len(entries),
               frameon=False, fontsize="medium")


def _plain_log_axis(ax: Any, low: float, high: float, prefix: str = "") -> None:
    """Log scale from low to high with ticks written 0.5, 1, 10, 100 (not 10^1): read at a glance."""
    import math

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(low, high)
    # 1-2-5 ticks over a short range; only powers of ten over a long one, where they would collide.
    subs = (1.0, 2.0, 5.0) if math.log10(high / low) <= 2.5 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{prefix}{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _height(rows_per_panel: Any) -> float:
    return 1.6 + 0.32 * max(rows_per_panel)


def ratio_figure(summaries: Any, scenario: str, human_size: Callable[[int], str]) -> Any:
    """Bars of the ratio to the baseline, one panel per message size."""
    Figure = _matplotlib()
    rows = [s for s in summaries if s.scenario == scenario]
    baseline = FANOUT_BASELINE if is_fanout(scenario) else BASELINE
    sizes = sorted({s.size for s in rows})
    panels = [sorted((s for s in rows if s.size == size), key=lambda s: (s.ok, s.ratio or 0)) for size in sizes]
    # Long facility names take a fixed share of each panel: wider panels when there are many rows.
    per_panel = 5.2 if max(len(p) for p in panels) <= 12 else 6.8
    height = _height([len(p) for p in panels]) + 0.3
    fig = Figure(figsize=(max(7.5, per_panel * len(sizes)), height), dpi=110)
    axes = fig.subplots(1, len(sizes), squeeze=False)[0]
    for ax, size, panel in zip(axes, sizes, panels):
        names = [s.facility for s in panel]
        ratios = [s.ratio if s.ok and s.ratio else 0 for s in panel]
        bars = ax.barh(range(len(panel)), ratios, color=colours(panel, baseline, lambda s: s.ratio or 0),
                       height=0.7, left=0)
        ax.set_yticks(range(len(panel)))
        ax.set_yticklabels(names)
        ax.set_ylim(-0.6, len(panel) - 0.4)
        for label, s in zip(ax.get_yticklabels(), panel):
            if is_ours(s.facility):
                label.set_fontweight("bold")
        positive = [r for r in ratios if r > 0] or [1.0]
        _plain_log_axis(ax, min(0.5, min(positive) / 1.5), max(2.0, max(positive) * 2.2), "x")
        ax.axvline(1.0, color=BASE_COLOR, linewidth=1, linestyle="--")
        for bar, s, r in zip(bars, panel, ratios):
            y = bar.get_y() + bar.get_height() / 2
            if not s.ok:
                ax.text(ax.get_xlim()[0] * 1.1, y, "FAILED", va="center", color=FAILED, fontweight="bold")
            elif r:
                ax.text(r * 1.06, y, f"x{r:.2f}" if r < 10 else f"x{r:.0f}", va="center", fontsize="small")
        ax.set_title(f"{human_size(size)} messages", fontsize="medium")
        ax.set_xlabel(f"times {baseline}'s rate (log scale; > 1 is faster)")
        ax.grid(True, axis="x", which="major", alpha=0.3)
        ax.set_axisbelow(True)
    title = fanout_title(scenario) if is_fanout(scenario) else TITLES.get(scenario, scenario)
    unit = "deliveries" if is_fanout(scenario) else "messages"
    fig.suptitle(f"{title}\n{unit} per second as a multiple of {baseline}'s, same run", fontweight="bold")
    _legend(fig, any(not s.ok for s in rows))
    fig.tight_layout(rect=(0, 0.4 / height, 1, 1))  # room for the legend: a fixed 0.4 inch
    return fig


def latency_figure(summaries: Any, human_size: Callable[[int], str]) -> Any:
    """Median and p99 round trip per facility, fastest at the top."""
    Figure = _matplotlib()
    rows = sorted((s for s in summaries if s.scenario == LATENCY),
                  key=lambda s: (s.ok, -s.median_ns if s.ok else 0))
    size = rows[0].size if rows else 64
    height = _height([len(rows)])
    fig = Figure(figsize=(8.5 if len(rows) <= 12 else 10.0, height), dpi=110)
    ax = fig.subplots()
    colour = colours(rows, BASELINE, lambda s: -s.median_ns)
    ys = list(range(len(rows)))
    med = [s.median_ns / 1e3 if s.ok else 0 for s in rows]
    p99 = [s.p99_ns / 1e3 if s.ok else 0 for s in rows]
    ax.barh([y + 0.19 for y in ys], med, height=0.38, color=colour, label="median (p50)")
    ax.barh([y - 0.19 for y in ys], p99, height=0.38, color=colour, alpha=0.45, hatch="///", label="p99")
    ax.set_yticks(ys)
    ax.set_yticklabels([s.facility for s in rows])
    ax.set_ylim(-0.65, len(rows) - 0.35)
    for label, s in zip(ax.get_yticklabels(), rows):
        if is_ours(s.facility):
            label.set_fontweight("bold")
    positive = [v for v in med + p99 if v > 0] or [1.0]
    _plain_log_axis(ax, min(positive) / 1.5, max(positive) * 6)
    for y, s, m, p in zip(ys, rows, med, p99):
        text = f"{m:.1f} us" if s.ok else "FAILED"
        ax.text(m * 1.06 if s.ok else min(positive), y + 0.19, text, va="center", fontsize="small",
                color="black" if s.ok else FAILED)
        if s.ok:
            ax.text(p * 1.06, y - 0.19, f"p99 {p:.0f} us", va="center", fontsize="x-small", color="#555555")
    ax.set_xlabel("round trip, microseconds (log scale; shorter is better). Solid: median; hatched: p99")
    ax.grid(True, axis="x", which="major", alpha=0.3)
    ax.set_axisbelow(True)
    fig.suptitle(f"Round trip of a {human_size(size)} message (ping -> echo -> ping)", fontweight="bold")
    _legend(fig, any(not s.ok for s in rows))
    fig.tight_layout(rect=(0, 0.4 / height, 1, 1))
    return fig


def locks_figure(lock_summaries: Any) -> Any:
    """ns per acquire+release, one panel per case."""
    from ringipc.bench.locks import BASE

    Figure = _matplotlib()
    cases = list(dict.fromkeys(s.case for s in lock_summaries))
    fig = Figure(figsize=(5.0 * len(cases), 3.0), dpi=110)
    axes = fig.subplots(1, len(cases), squeeze=False)[0]
    for ax, case in zip(axes, cases):
        rows = sorted((s for s in lock_summaries if s.case == case), key=lambda s: not is_ours(s.facility))[::-1]
        ns = [s.ns if s.ok else 0 for s in rows]
        ax.barh(range(len(rows)), ns, height=0.6, color=colours(rows, BASE, lambda s: -s.ns))
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([s.facility for s in rows])
        for y, s, v in zip(range(len(rows)), rows, ns):
            ax.text(v * 1.02, y, f"{v:.0f} ns" + (f"  (x{s.ratio:.2f})" if s.ratio else "") if s.ok else "FAILED",
                    va="center", fontsize="small", color="black" if s.ok else FAILED)
        ax.set_xlim(0, max(ns + [1]) * 1.6)
        ax.set_title(case, fontsize="medium")
        ax.set_xlabel("ns per acquire+release (shorter is better)")
    fig.suptitle("Locks: ringipc.sync.Lock and multiprocessing.Lock", fontweight="bold")
    fig.tight_layout()
    return fig


def figures(summaries: Any, lock_summaries: Any = ()) -> Dict[Any, Any]:
    """{name: Figure} for every scenario with rows."""
    from ringipc.bench.report import human_size

    out = {}
    scenarios = list(dict.fromkeys(s.scenario for s in summaries))
    for scenario in [THROUGHPUT, MPMC] + sorted(x for x in scenarios if is_fanout(x)):
        if scenario in scenarios:
            out[scenario] = ratio_figure(summaries, scenario, human_size)
    if LATENCY in scenarios:
        out[LATENCY] = latency_figure(summaries, human_size)
    if lock_summaries:
        out["locks"] = locks_figure(lock_summaries)
    return out


def write_plots(path: str, summaries: Any, lock_summaries: Any = ()) -> List[str]:
    """Write PATH-SCENARIO.png and .svg for each figure (PATH's .png/.svg suffix dropped); return the paths."""
    stem, ext = os.path.splitext(path)
    if ext.lower() not in (".png", ".svg"):
        stem = path
    import matplotlib

    written = []
    # SVG text stays text (not glyph outlines): searchable, selectable, and a tenth of the size.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        for name, fig in figures(summaries, lock_summaries).items():
            for suffix in ("png", "svg"):
                target = f"{stem}-{name}.{suffix}"
                fig.savefig(target, metadata={"Date": None} if suffix == "svg" else None)
                written.append(target)
    return written
