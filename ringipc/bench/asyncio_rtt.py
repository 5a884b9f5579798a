"""The ``asyncio`` scenario: awaiting a 64 B round trip between two
processes, each in its own event loop (ringipc.asyncio against asyncio
streams over a UNIX socket and pyzmq's ``zmq.asyncio``), and 64 B
throughput to one awaiting consumer (against ``zmq.asyncio`` PUSH/PULL).

The peers are ringipc/bench/async_peers.py (benchmarks/test_asyncio.py times
the same under pytest-benchmark).  Each run is a fresh driver process (the
bench's start method) that forks its echoing child; the figure is
microseconds per round trip (per message for throughput), and the ratio is
this row's time over the baseline's in the same run (< 1: faster).
"""
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

from ringipc.bench.drivers import case_table, cells, run_all, run_driver

ASYNCIO = "asyncio"
RTT, THROUGHPUT = "round trip 64 B", "throughput 64 B"
BASE = {RTT: "asyncio streams (unix)", THROUGHPUT: "zmq.asyncio"}
# (case, messages, with --quick)
CASES = [(RTT, 2000, 200), (THROUGHPUT, 50_000, 5_000)]


def _peers(case: str) -> List[Any]:
    from ringipc.bench.async_peers import RTT_PEERS, THROUGHPUT_PEERS

    return RTT_PEERS if case == RTT else THROUGHPUT_PEERS


def _available(name: str) -> bool:
    if not name.startswith("zmq"):
        return True
    try:
        import zmq.asyncio  # noqa: F401
    except ImportError:
        return False
    return True


def measure(name: str, case: str, n: int) -> float:
    """Seconds for `n` round trips (or messages) with peer `name`, after a warm-up."""
    peer_type = next(p for p in _peers(case) if p.name == name)
    mode = "rtt" if case == RTT else "throughput"
    runner = asyncio.Runner()
    peer = peer_type(mode)
    try:
        go = peer.rtt if mode == "rtt" else peer.drain
        runner.run(go(max(1, n // 10)))  # both loops running, descriptors registered
        t0 = time.perf_counter()
        runner.run(go(n))
        return time.perf_counter() - t0
    finally:
        peer.stop()
        runner.close()


@dataclass
class AsyncResult:
    facility: str
    case: str
    messages: int
    ok: bool = True
    error: str = ""
    seconds: float = 0.0
    repetition: int = 0

    @property
    def us(self) -> float:
        return 1e6 * self.seconds / self.messages if self.ok and self.messages else 0.0


def run_one(name: str, case: str, n: int, timeout: float = 60.0, start_method: str = "forkserver") -> AsyncResult:
    ok, value = run_driver(measure, (name, case, n), "bench-asyncio", timeout, start_method)
    if not ok:
        return AsyncResult(name, case, n, ok=False, error=value)
    return AsyncResult(name, case, n, seconds=value)


def run(settings: Any, quick: bool = False, on_result: Optional[Callable[..., Any]] = None) -> List[Any]:
    """Every case for every available peer, repetitions outermost, the order rotating."""
    groups = [[(case, n_quick if quick else n, p.name) for p in _peers(case) if _available(p.name)]
              for case, n, n_quick in CASES]
    return run_all(groups, settings.repeat,
                   lambda cell: run_one(cell[2], cell[0], cell[1], settings.timeout, settings.start_method),
                   on_result)


@dataclass
class AsyncSummary:
    facility: str
    case: str
    runs: int
    ok: bool
    error: str = ""
    us: float = 0.0  # median µs per round trip (message)
    all_us: List[float] = field(default_factory=list)
    ratio: Optional[float] = None  # this row's time / the baseline's; < 1 is faster


def summarize(results: Any) -> List[Any]:
    out = [AsyncSummary(c.key[1], c.key[0], c.runs, c.ok, c.error, c.median, c.values)
           for c in cells(results, lambda r: (r.case, r.facility), lambda r: r.us)]
    base = {s.case: s for s in out if s.facility == BASE[s.case] and s.ok}
    for s in out:
        b = base.get(s.case)
        if s.ok and b is not None and b.us:
            s.ratio = s.us / b.us
    return out


def table(summaries: Any) -> Any:
    return case_table("asyncio, two processes, an event loop in each: µs per round trip / message", "facility",
                      "µs", "vs baseline", [c for c, *_ in CASES], summaries, lambda s: s.us, lambda s: s.all_us,
                      1, baseline=lambda s: s.facility == BASE[s.case])
