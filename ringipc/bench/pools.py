"""The ``pools`` scenario: the standard library's process pools on ringipc's
context against multiprocessing's, in the same run.

Each run is a fresh driver process (the bench's start method) that builds a
pool of ``WORKERS`` forked workers on one context, warms it up, then times one
``map`` with ``chunksize=1`` (every task and every result crosses the pool's
queues on its own: the per-task cost is what the context changes) and checks
every result.  Workloads: many trivial tasks returning a small int, and fewer
tasks each returning 1 MiB (also on a context with 4 MiB rings, which hold such
a result; the default 1 MiB ring sends it through a side segment).
The ringipc rows of ``ProcessPoolExecutor.map`` use ``ringipc.ProcessPoolExecutor``
(call and result queues on rings), the mp rows the standard library's class.
Repetitions are the outer loop and the order of the contexts rotates, as for
the other scenarios; ratios compare each pool on ringipc with the same pool
on multiprocessing in this run.
"""
import fnmatch
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

from ringipc.bench.drivers import cells, run_all, run_driver

POOLS = "pools"
WORKERS = 2
MIB = 1 << 20
# (name, tasks, quick tasks)
WORKLOADS = [("trivial", 100_000, 10_000), ("1 MiB", 1_000, 100)]
POOL_KINDS = ("Pool.map", "ProcessPoolExecutor.map")
# "ringipc-4MiB" is get_context(capacity=4 MiB): rings that hold a 1 MiB
# result, which the default 1 MiB ring sends through a side segment.
CONTEXTS = ("ringipc", "mp")
LARGE_CONTEXTS = ("ringipc", "ringipc-4MiB", "mp")
CAPACITY = {"ringipc": None, "ringipc-4MiB": 4 << 20}


def contexts_for(workload: str) -> Any:
    return CONTEXTS if workload == "trivial" else LARGE_CONTEXTS


def facility_names() -> List[str]:
    return [f"{ctx} {kind}" for kind in POOL_KINDS for ctx in LARGE_CONTEXTS]


def matches(name: str, only: Optional[str] = None, skip: Optional[str] = None) -> bool:
    def pats(text: Optional[str]) -> List[str]:
        return [p.strip() for p in (text or "").split(",") if p.strip()]

    if any(fnmatch.fnmatchcase(name, p) for p in pats(skip)):
        return False
    only_p = pats(only)
    return not only_p or any(fnmatch.fnmatchcase(name, p) for p in only_p)


def claims(pattern: str) -> bool:
    """Whether a --only/--skip pattern names pool rows (and so is not a channel facility's)."""
    return bool(fnmatch.filter(facility_names(), pattern))


# -- the measurement (runs in a fresh driver process) ----------------------------------

def trivial(i: int) -> int:
    return i


def one_mib(i: int) -> bytes:
    return bytes((i % 251,)) * MIB


def _check(workload: str, results: Any, n: int) -> None:
    if len(results) != n:
        raise AssertionError(f"{len(results)} results for {n} tasks")
    if workload == "trivial":
        if results != list(range(n)):
            raise AssertionError("results differ from the tasks' return values")
        return
    for i, r in enumerate(results):
        if len(r) != MIB or r[0] != i % 251 or r[-1] != i % 251:
            raise AssertionError(f"result {i} is not what the task returned")


def measure(kind: str, context: str, workload: str, n: int) -> float:
    """Seconds for one ``map`` of `n` tasks (after a warm-up) on a fresh pool; checks every result."""
    import concurrent.futures
    import multiprocessing

    import ringipc

    if context in CAPACITY:
        ctx: Any = ringipc.get_context("fork", capacity=CAPACITY[context])  # a drop-in for multiprocessing's
    else:
        ctx = multiprocessing.get_context("fork")
    fn = trivial if workload == "trivial" else one_mib
    run: Callable[[int], Any]
    stop: Callable[[], Any]
    if kind == "Pool.map":
        pool = ctx.Pool(WORKERS)
        run, stop = (lambda k: pool.map(fn, range(k), chunksize=1)), (lambda: (pool.close(), pool.join()))
    else:
        # What a ringipc user gets: ringipc.ProcessPoolExecutor, whose call
        # queue is a ring too (the standard class given ringipc's context keeps
        # multiprocessing's call queue; install() switches that one as well).
        cls = ringipc.ProcessPoolExecutor if context in CAPACITY else concurrent.futures.ProcessPoolExecutor
        pool = cls(WORKERS, mp_context=ctx)
        run, stop = (lambda k: list(pool.map(fn, range(k)))), (lambda: pool.shutdown())
    try:
        _check(workload, run(4 * WORKERS), 4 * WORKERS)  # start the workers, fault everything in
        t0 = time.perf_counter()
        results = run(n)
        seconds = time.perf_counter() - t0
        _check(workload, results, n)
        del results
    finally:
        stop()
    return seconds


# -- running ------------------------------------------------------------------------------

@dataclass
class PoolResult:
    facility: str
    workload: str
    tasks: int
    ok: bool = True
    error: str = ""
    seconds: float = 0.0
    repetition: int = 0

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds if self.ok and self.seconds else 0.0


def run_one(kind: str, context: str, workload: str, n: int, timeout: float, start_method: str) -> "PoolResult":
    name = f"{context} {kind}"
    ok, value = run_driver(measure, (kind, context, workload, n), f"bench-pool-{context}", timeout, start_method)
    if not ok:
        return PoolResult(name, workload, n, ok=False, error=value)
    return PoolResult(name, workload, n, seconds=value)


def run(settings: Any, quick: bool = False, only: Optional[str] = None, skip: Optional[str] = None,
        on_result: Optional[Callable[..., Any]] = None) -> List[Any]:
    groups = []
    for workload, n, n_quick in WORKLOADS:
        for kind in POOL_KINDS:
            groups.append([(kind, c, workload, n_quick if quick else n)
                           for c in contexts_for(workload) if matches(f"{c} {kind}", only, skip)])
    # A pool run lasts seconds, not the channels' ~0.15 s: a longer limit.
    timeout = max(settings.timeout, 300.0)

    def one(cell: Tuple[str, str, str, int]) -> PoolResult:
        return run_one(*cell, timeout, settings.start_method)

    return run_all(groups, settings.repeat, one, on_result)


@dataclass
class PoolSummary:
    facility: str
    workload: str
    tasks: int
    runs: int
    ok: bool
    error: str = ""
    rate: float = 0.0
    rates: List[float] = field(default_factory=list)
    ratio: Optional[float] = None


def summarize(results: Any) -> List[Any]:
    out = [PoolSummary(c.key[1], c.key[0], c.key[2], c.runs, c.ok, c.error, c.median, c.values)
           for c in cells(results, lambda r: (r.workload, r.facility, r.tasks), lambda r: r.rate)]
    by = {(s.workload, s.facility): s for s in out}
    for s in out:
        context, kind = s.facility.split(" ", 1)
        base = by.get((s.workload, f"mp {kind}"))
        if s.ok and base is not None and base.ok and base.rate:
            s.ratio = s.rate / base.rate
    return out


def _compact(rate: float) -> str:
    return f"{rate / 1e3:.1f}k" if rate >= 1e4 else f"{rate:,.0f}"


def table(summaries: Any) -> Any:
    from ringipc.bench.term import SIMPLE, Table

    workloads = []
    for s in summaries:
        if (s.workload, s.tasks) not in workloads:
            workloads.append((s.workload, s.tasks))
    counts = ", ".join(f"{tasks:,} {w}" for w, tasks in workloads)
    t = Table(title=f"Process pools: map(chunksize=1), {WORKERS} forked workers ({counts} tasks)",
              title_justify="left", header_style="bold", box=SIMPLE, pad_edge=False)
    spread = any(len(s.rates) > 1 for s in summaries)
    t.add_column("result", no_wrap=True)
    t.add_column("pool", no_wrap=True)
    t.add_column("context", no_wrap=True)
    t.add_column("tasks/s", justify="right", no_wrap=True)
    if spread:
        t.add_column("spread", justify="right", style="dim", no_wrap=True)
    t.add_column("vs mp", justify="right", no_wrap=True)
    for i, (workload, tasks) in enumerate(workloads):
        if i:
            t.add_section()
        for j, s in enumerate(x for x in summaries if x.workload == workload):
            context, kind = s.facility.split(" ", 1)
            cells = [workload if j == 0 else "", kind.replace(".map", ""), context]
            if not s.ok:
                cells += ["[red]FAILED[/]"] + [""] * (1 + spread)
            else:
                cells.append(f"{s.rate:,.0f}")
                if spread:
                    cells.append(f"{_compact(min(s.rates))}-{_compact(max(s.rates))}" if len(s.rates) > 1 else "")
                cells.append(f"{s.ratio:.2f}x" if s.ratio is not None else "")
            t.add_row(*cells)
    return t
