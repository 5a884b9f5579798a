"""The terminal table (rich) and the JSON record of a run."""
import dataclasses
import datetime
import json
import os
import platform
import sys
from typing import Any, Dict, List, Optional, Tuple

from ringipc.bench.adapters import BASELINE
from ringipc.bench.fanout import FANOUT_BASELINE, is_fanout, title as fanout_title
from ringipc.bench.runner import LATENCY, MPMC, THROUGHPUT, is_latency

_TITLES = {
    THROUGHPUT: "Throughput, 1 producer -> 1 consumer",
    MPMC: "Throughput, {p} producers -> {c} consumers",
    LATENCY: "Round trip of a {size} message",
}


def human_size(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


def parse_size(text: str) -> int:
    """'64', '1K', '64KiB', '1M' -> bytes."""
    t = text.strip().lower().replace("ib", "").replace("b", "")
    scale = {"k": 1 << 10, "m": 1 << 20}.get(t[-1:], 1)
    return int(float(t[:-1] if scale > 1 else t) * scale)


def _rate(x: Any) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f} {unit}"
    return f"{x:.0f}"


def _spread(s: Any) -> str:
    """Half the min-max range over the median: how far to trust the digits."""
    if s.runs < 2 or not s.rate:
        return ""
    return f"±{50 * (s.rate_max - s.rate_min) / s.rate:.0f}%"


def _ratio(s: Any) -> str:
    if s.ratio is None:
        return "-"
    style = "green" if s.ratio >= 1.5 else ("red" if s.ratio < 0.8 else "")
    text = f"x{s.ratio:.2f}"
    return f"[{style}]{text}[/]" if style else text


def _sort_key(s: Any) -> Tuple[int, float]:
    # best first; failures last
    if not s.ok:
        return (1, 0)
    return (0, s.median_ns) if is_latency(s.scenario) else (0, -s.rate)


def tables(summaries: Any, settings: Any) -> List[Any]:
    """rich Tables, one per scenario, rows grouped by message size."""
    from ringipc.bench.term import SIMPLE, Table, escape

    out = []
    fanouts = sorted({s.scenario for s in summaries if is_fanout(s.scenario)})
    for scenario in (THROUGHPUT, MPMC, LATENCY, *fanouts):
        rows = [s for s in summaries if s.scenario == scenario]
        if not rows:
            continue
        baseline = FANOUT_BASELINE if is_fanout(scenario) else BASELINE
        title = fanout_title(scenario) if is_fanout(scenario) else _TITLES[scenario].format(
            p=settings.producers, c=settings.consumers, size=human_size(settings.latency_size))
        # A light frame so the widest table still fits 80 columns.
        table = Table(title=title, title_justify="left", header_style="bold", box=SIMPLE,
                      pad_edge=False)
        spread = settings.repeat > 1
        table.add_column("size", justify="right", no_wrap=True)
        table.add_column("facility", no_wrap=True)
        if is_latency(scenario):
            table.add_column("median us", justify="right")
            table.add_column("p99 us", justify="right")
        else:
            table.add_column("msg/s", justify="right", no_wrap=True)
            table.add_column("MB/s", justify="right", no_wrap=True)
            if spread:
                table.add_column("spread", justify="right", style="dim", no_wrap=True)
        table.add_column(f"vs {baseline}", justify="right", no_wrap=True)
        sizes = sorted({s.size for s in rows})
        for i, size in enumerate(sizes):
            if i:
                table.add_section()
            for j, s in enumerate(sorted((s for s in rows if s.size == size), key=_sort_key)):
                name = f"[bold]{s.facility}[/]" if s.facility == baseline else escape(s.facility)
                width = 3 if is_latency(scenario) else 3 + spread
                if not s.ok:
                    cells = ["[red]FAILED[/]"] + [""] * (width - 1)
                elif is_latency(scenario):
                    cells = [f"{s.median_ns / 1e3:.1f}", f"{s.p99_ns / 1e3:.1f}", _ratio(s)]
                else:
                    cells = [_rate(s.rate), f"{s.mbps:.1f}" if s.mbps < 1000 else f"{s.mbps:.0f}"]
                    if spread:
                        cells.append(_spread(s))
                    cells.append(_ratio(s))
                table.add_row(human_size(size) if j == 0 else "", name, *cells)
        out.append(table)
    return out


def failures_text(summaries: Any) -> str:
    from ringipc.bench.term import escape

    bad = [s for s in summaries if not s.ok]
    if not bad:
        return ""
    lines = ["[bold red]Failed[/] (lost, corrupted, raised, died or timed out: no number is shown for these)"]
    for s in bad:
        lines.append(f"  [red]{escape(s.facility)}[/] ({s.scenario} {human_size(s.size)}): {escape(s.error)}")
    return "\n".join(lines)


def skipped_text(skips: Any) -> str:
    from ringipc.bench.term import escape

    if not skips:
        return ""
    # One line per reason: "no shared many-to-many channel" would otherwise repeat a dozen times.
    by_reason: Dict[Tuple[str, str], List[str]] = {}
    for s in skips:
        where = f"{s.scenario} {human_size(s.size)}" if s.scenario else "everything"
        by_reason.setdefault((where, s.reason), []).append(s.facility)
    lines = ["[bold]Skipped[/]"]
    for (where, reason), names in by_reason.items():
        lines.append(f"  [yellow]{escape(', '.join(names))}[/] ({where}): {escape(reason)}")
    return "\n".join(lines)


def header_text(settings: Any) -> str:
    """One line on what the numbers were measured on, so a pasted table carries its context."""
    from ringipc.bench.runner import cpu_plan

    info = machine_info()
    cpus = cpu_plan(1, 1)
    pinned = f"producer on CPU {cpus[0]}, consumer on CPU {cpus[1]}" if settings.pin and cpus[0] is not None \
        else "not pinned"
    return (f"[dim]{info['cpu'] or info['machine']}, {info['cpus_allowed'] or info['cpu_count']} CPUs, {pinned}; "
            f"Python {platform.python_version()}; {settings.start_method}; {settings.repeat} x ~{settings.target:g} s per cell[/]")


def print_report(console: Any, summaries: Any, skips: Any, settings: Any) -> None:
    console.print(header_text(settings))
    console.print()
    for table in tables(summaries, settings):
        console.print(table)
        console.print()
    for text in (failures_text(summaries), skipped_text(skips)):
        if text:
            console.print(text)
    if summaries:  # the extra scenarios' tables name their own baselines
        console.print(f"[dim]Ratios are to {BASELINE} measured in this same run (> 1 is faster); "
                      "medians over repetitions.[/]")


# -- JSON ------------------------------------------------------------------------------
def _version(dist: str) -> Optional[str]:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return None


def _cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> Dict[str, Any]:
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:
        allowed = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_allowed": allowed,
        "python": sys.version,
        "implementation": platform.python_implementation(),
    }


def versions() -> Dict[str, Optional[str]]:
    names = ["ringipc", "posix_ipc", "faster-fifo", "pyzmq", "iceoryx2", "cloudtoid-interprocess", "slick-queue-py",
             "kickmsg", "subetha-ipc", "eclipse-ecal", "rich", "matplotlib"]
    out = {name: _version(name) for name in names}
    if out["ringipc"] is None:  # running from a source tree that was never pip-installed
        try:
            import ringipc

            out["ringipc"] = getattr(ringipc, "__version__", None)
        except ImportError:
            pass
    return out


def to_json(results: Any, summaries: Any, skips: Any, settings: Any) -> Dict[str, Any]:
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(),
        "settings": dataclasses.asdict(settings),
        "baseline": BASELINE,
        "runs": [dict(dataclasses.asdict(r), mbps=r.mbps) for r in results],
        "summary": [dict(dataclasses.asdict(s), mbps=s.mbps) for s in summaries],
        "skipped": [dataclasses.asdict(s) for s in skips],
    }


def write_json(path: str, results: Any, summaries: Any, skips: Any, settings: Any) -> None:
    with open(path, "w") as f:
        json.dump(to_json(results, summaries, skips, settings), f, indent=1)
        f.write("\n")
