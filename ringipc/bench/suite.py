"""A whole benchmark run: which cells to run, in what order, with how many messages.

Repetitions are the outer loop and the facilities' order rotates each time, so
a slow drift of the machine (thermal, a neighbour's job) lands on every
facility alike instead of on whichever ran last.  Message counts adapt: each
run sizes its timed round from its own warm-up round, and each cell's next
warm-up from the rate its previous run achieved.
"""
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ringipc.bench.adapters import BASELINE
from ringipc.bench.drivers import rotating
from ringipc.bench.fanout import (FANOUT, FANOUT_BASELINE, FANOUT_LATENCY_SUBSCRIBERS, FANOUT_SIZES, FANOUT_SUBSCRIBERS,
                                  is_fanout, latency_scenario_name, scenario_name)
from ringipc.bench.runner import (LATENCY, MAX_COUNT, MIN_COUNT, MPMC, THROUGHPUT, Result, count_for,  # noqa: F401
                                  is_latency, run_once)

DEFAULT_SIZES = [64, 1 << 10, 64 << 10, 1 << 20]
QUICK_SIZES = [64, 64 << 10]


@dataclass
class Settings:
    sizes: List[int] = field(default_factory=lambda: list(DEFAULT_SIZES))
    scenarios: List[str] = field(default_factory=lambda: [THROUGHPUT, LATENCY, MPMC])
    repeat: int = 3
    target: float = 0.15  # seconds each timed region aims for; ~2 min default run on 2 cores
    timeout: float = 30.0  # per run, set-up included
    latency_size: int = 64
    mpmc_size: int = 64
    producers: int = 2
    consumers: int = 2
    pin: bool = True
    # Fresh processes either way; forkserver starts them ~0.05 s apiece instead of ~0.3 s
    # (an interpreter start under spawn), which is what keeps the default run near 2 minutes.
    start_method: str = "forkserver"
    # {scenario: facility names}: only these cells run (the focused default, ringipc/bench/focus.py)
    focus: Optional[Dict[str, List[str]]] = None


@dataclass
class Cell:
    facility: Any
    scenario: str
    size: int
    producers: int = 1
    consumers: int = 1
    count: int = 0  # messages per producer, or round trips
    failed: Optional[str] = None

    @property
    def key(self) -> Tuple[str, int, str]:
        return (self.scenario, self.size, self.facility.name)


@dataclass
class Skip:
    facility: str
    reason: str
    scenario: str = ""
    size: int = 0


def initial_count(scenario: str, size: int, target: float, producers: int = 1) -> int:
    if is_latency(scenario):
        return max(MIN_COUNT, int(target / 50e-6))  # guess: 50 us a round trip
    guess = min(200_000, 1e9 / size)  # msg/s of a modest facility
    return max(MIN_COUNT, int(guess * target / producers))


def next_count(result: Any, cell: Any, target: float) -> int:
    return count_for(result, target, cell.producers)


def plan(facilities: Any, settings: Any) -> Tuple[List[Any], List[Any]]:
    """(cells to run, skips with reasons); nothing is spawned here."""
    cells, skips = [], []
    shapes = []
    if THROUGHPUT in settings.scenarios:
        shapes += [(THROUGHPUT, size, 1, 1) for size in settings.sizes]
    if LATENCY in settings.scenarios:
        shapes.append((LATENCY, settings.latency_size, 1, 1))
    if MPMC in settings.scenarios:
        shapes.append((MPMC, settings.mpmc_size, settings.producers, settings.consumers))
    if FANOUT in settings.scenarios:
        shapes += [(scenario_name(c), size, 1, c) for c in FANOUT_SUBSCRIBERS for size in FANOUT_SIZES]
        shapes += [(latency_scenario_name(c), settings.latency_size, 1, c) for c in FANOUT_LATENCY_SUBSCRIBERS]
    for f in facilities:
        try:
            ok, why = f.available()
        except Exception as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        if not ok:
            skips.append(Skip(f.name, why))
            continue
        for scenario, size, p, c in shapes:
            if settings.focus is not None and f.name not in settings.focus.get(scenario, ()):
                continue  # not one of the rows that the focused run shows
            if is_fanout(scenario) != getattr(f, "fanout", False):
                continue  # fan-out facilities run fan-out scenarios only, and only they do
            if f.scenarios is not None and scenario not in f.scenarios:
                skips.append(Skip(f.name, f"runs only {', '.join(f.scenarios)}", scenario, size))
                continue
            try:
                ok, why = f.supports(size, p, c)
            except Exception as exc:
                ok, why = False, f"{type(exc).__name__}: {exc}"
            if not ok:
                skips.append(Skip(f.name, why, scenario, size))
                continue
            n = initial_count(scenario, size, settings.target, p)
            cells.append(Cell(f, scenario, size, p, c, n))
    return cells, skips


def schedule(cells: Any, repeat: int) -> Iterator[Tuple[int, Any]]:
    """(repetition, cell) pairs with repetitions outermost and a rotating facility order."""
    groups: Dict[Any, List[Any]] = {}
    for cell in cells:
        groups.setdefault((cell.scenario, cell.size), []).append(cell)
    return rotating(groups.values(), repeat)


def run(facilities: Any, settings: Any, on_result: Optional[Callable[..., Any]] = None,
        on_start: Optional[Callable[..., Any]] = None, skips: Any = None) -> Tuple[List[Any], List[Any]]:
    """Run everything; return (results, skips).

    ``on_start(cell, repetition, index, total)`` and ``on_result(result, done, total)``
    report progress; ``skips``, if given, is filled in before the first run.
    """
    cells, found = plan(facilities, settings)
    skips = [] if skips is None else skips
    skips.extend(found)
    total = len(cells) * settings.repeat
    results, hung = [], set()
    for done, (rep, cell) in enumerate(schedule(cells, settings.repeat), 1):
        name = cell.facility.name
        if on_start is not None:
            on_start(cell, rep, done, total)
        if cell.failed or name in hung:
            # A failed cell stays failed; a facility that hung once is not given the chance to again.
            why = cell.failed or "not run: an earlier run of this facility timed out"
            res = Result(name, cell.scenario, cell.size, cell.producers, cell.consumers,
                         ok=False, error=why, skipped=True)
        else:
            res = run_once(cell.facility, cell.scenario, cell.size, cell.count, cell.producers,
                           cell.consumers, settings.timeout, settings.pin, target=settings.target,
                           start_method=settings.start_method)
            if res.ok:
                cell.count = next_count(res, cell, settings.target)
            else:
                cell.failed = res.error
                if "timed out" in res.error:
                    hung.add(name)
        res.repetition = rep
        results.append(res)
        if on_result is not None:
            on_result(res, done, total)
    return results, skips


@dataclass
class Summary:
    facility: str
    scenario: str
    size: int
    runs: int
    ok: bool
    error: str = ""
    rate: float = 0.0  # median msg/s
    rate_min: float = 0.0
    rate_max: float = 0.0
    median_ns: float = 0.0  # latency: median over runs of each run's median
    p99_ns: float = 0.0
    ratio: Optional[float] = None  # vs the baseline in this run; >1 is better

    @property
    def mbps(self) -> float:
        return self.rate * self.size / 1e6


def summarize(results: Any) -> List[Any]:
    """One Summary per (scenario, size, facility), in first-seen order, with ratios to the baseline."""
    cells: Dict[Any, List[Any]] = {}
    for r in results:
        cells.setdefault((r.scenario, r.size, r.facility), []).append(r)
    out = []
    for (scenario, size, name), runs in cells.items():
        bad = [r for r in runs if not r.ok and not r.skipped] or [r for r in runs if not r.ok]
        good = [r for r in runs if r.ok]
        s = Summary(name, scenario, size, len(good), ok=not bad)
        if bad:
            s.error = bad[0].error
        elif is_latency(scenario):
            s.median_ns = statistics.median(r.latency["median"] for r in good)
            s.p99_ns = statistics.median(r.latency["p99"] for r in good)
        else:
            rates = [r.rate for r in good]
            s.rate, s.rate_min, s.rate_max = statistics.median(rates), min(rates), max(rates)
        out.append(s)
    base = {(s.scenario, s.size): s for s in out
            if s.facility == (FANOUT_BASELINE if is_fanout(s.scenario) else BASELINE) and s.ok}
    for s in out:
        b = base.get((s.scenario, s.size))
        if b is None or not s.ok:
            continue
        if is_latency(s.scenario):
            s.ratio = b.median_ns / s.median_ns if s.median_ns else None
        else:
            s.ratio = s.rate / b.rate if b.rate else None
    return out
