"""The ``locks`` scenario: ``ringipc.sync.Lock`` against ``multiprocessing.Lock``.

Two cases, each run in a fresh driver process (the bench's start method):

* uncontended: one process takes and releases a lock nobody else touches
  (ringipc's makes no system call here);
* contended: two processes pinned to different CPUs each take the lock ``n``
  times around an increment of a shared counter, so the lock changes hands
  between processes all the time; the counter must end at exactly ``2 n`` (a
  lost update is a FAILED row, as a lost message is elsewhere).  Both meet at
  a barrier before their loops and the time runs from there to the later
  one's end: starting the second process costs milliseconds, as much as the
  loops themselves, and would otherwise be most of what is measured (and let
  the first process run its loop nearly alone).

The figure is nanoseconds per acquire+release; the ratio is mp.Lock's time over
this lock's in the same run (> 1: faster).  ``benchmarks/test_sync.py`` times
the same loops under pytest-benchmark.
"""
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

from ringipc.bench.drivers import case_table, cells, run_all, run_driver

LOCKS = "locks"
KINDS = ("ringipc", "mp")
NAMES = {"ringipc": "ringipc.sync.Lock", "mp": "mp.Lock"}
BASE = NAMES["mp"]
UNCONTENDED, CONTENDED = "uncontended", "contended, 2 processes"
# (case, acquisitions per process, with --quick)
CASES = [(UNCONTENDED, 200_000, 20_000), (CONTENDED, 20_000, 2_000)]


def primitives(kind: str) -> Any:
    """Where ``kind``'s Lock, Semaphore ... come from: ringipc.sync, or multiprocessing's fork context."""
    if kind == "ringipc":
        from ringipc import sync

        return sync
    import multiprocessing

    return multiprocessing.get_context("fork")


def acquire_release(lock: Any, n: int) -> None:
    for _ in range(n):
        lock.acquire()
        lock.release()


def take_often(lock: Any, counter: Any, n: int, cpu: Optional[int] = None, start: Any = None,
               times: Any = None, slot: int = 0) -> None:
    """``n`` increments of ``counter.value`` under ``lock``; after ``start.wait()``
    if given, noting the loop's start and end in ``times[2 slot]``, ``times[2 slot + 1]``."""
    if cpu is not None:
        import os

        os.sched_setaffinity(0, {cpu})
    if start is not None:
        start.wait(30)
    t0 = time.perf_counter()
    for _ in range(n):
        with lock:
            counter.value += 1
    if times is not None:
        times[2 * slot], times[2 * slot + 1] = t0, time.perf_counter()


def measure(kind: str, case: str, n: int, cpus: Any = (None, None)) -> float:
    """Seconds for ``n`` acquire+release pairs per process; raises if the counter is wrong."""
    import multiprocessing
    import os

    lock = primitives(kind).Lock()
    if cpus[0] is not None:
        os.sched_setaffinity(0, {cpus[0]})
    if case == UNCONTENDED:
        acquire_release(lock, max(1, n // 10))  # warm up: fault the segment in
        t0 = time.perf_counter()
        acquire_release(lock, n)
        return time.perf_counter() - t0
    fork = multiprocessing.get_context("fork")
    counter = fork.Value("q", 0, lock=False)
    start = fork.Barrier(2)
    times = fork.Array("d", 4, lock=False)  # perf_counter is CLOCK_MONOTONIC: one clock for both
    child = fork.Process(target=take_often, args=(lock, counter, n, cpus[1], start, times, 1))
    child.start()
    try:
        take_often(lock, counter, n, None, start, times, 0)
    finally:
        child.join()
    seconds = max(times[1], times[3]) - min(times[0], times[2])
    if child.exitcode != 0:
        raise RuntimeError(f"the other process exited with code {child.exitcode}")
    if counter.value != 2 * n:
        raise AssertionError(f"counter is {counter.value}, not {2 * n}: an update was lost under the lock")
    return seconds


@dataclass
class LockResult:
    facility: str
    case: str
    ops: int  # acquire+release pairs, all processes together
    ok: bool = True
    error: str = ""
    seconds: float = 0.0
    repetition: int = 0

    @property
    def ns(self) -> float:
        return 1e9 * self.seconds / self.ops if self.ok and self.ops else 0.0


def run_one(kind: str, case: str, n: int, timeout: float = 30.0, start_method: str = "forkserver", pin: bool = True) -> "LockResult":
    from ringipc.bench.runner import cpu_plan

    cpus = tuple(cpu_plan(1, 1)) if pin else (None, None)
    ops = n * (2 if case == CONTENDED else 1)
    ok, value = run_driver(measure, (kind, case, n, cpus), f"bench-lock-{kind}", timeout, start_method)
    if not ok:
        return LockResult(NAMES[kind], case, ops, ok=False, error=value)
    return LockResult(NAMES[kind], case, ops, seconds=value)


def run(settings: Any, quick: bool = False, on_result: Optional[Callable[..., Any]] = None) -> List[Any]:
    """Every case for both locks, repetitions outermost, the order alternating."""
    groups = [[(case, n_quick if quick else n, kind) for kind in KINDS] for case, n, n_quick in CASES]
    return run_all(groups, settings.repeat,
                   lambda cell: run_one(cell[2], cell[0], cell[1], settings.timeout, settings.start_method,
                                        settings.pin), on_result)


@dataclass
class LockSummary:
    facility: str
    case: str
    runs: int
    ok: bool
    error: str = ""
    ns: float = 0.0  # median ns per acquire+release
    all_ns: List[float] = field(default_factory=list)
    ratio: Optional[float] = None  # mp.Lock's ns / this one's; > 1 is faster


def summarize(results: Any) -> List[Any]:
    out = [LockSummary(c.key[1], c.key[0], c.runs, c.ok, c.error, c.median, c.values)
           for c in cells(results, lambda r: (r.case, r.facility), lambda r: r.ns)]
    base = {s.case: s for s in out if s.facility == BASE and s.ok}
    for s in out:
        b = base.get(s.case)
        if s.ok and b is not None and s.ns:
            s.ratio = b.ns / s.ns
    return out


def table(summaries: Any) -> Any:
    return case_table("Locks: ns per acquire+release", "lock", "ns", f"vs {BASE}", [c for c, *_ in CASES],
                      summaries, lambda s: s.ns, lambda s: s.all_ns, 0)
