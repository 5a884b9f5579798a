"""The ``large`` scenario: big objects, 1 producer process -> 1 consumer, in GB/s.

Objects of 1 MiB, 16 MiB and 256 MiB (``--quick``: 1 MiB and 16 MiB), as
``bytes`` and as NumPy float64 arrays, through ringipc.Queue, ringipc.Pipe,
an ``shm://`` and a ``unix://`` channel, multiprocessing.Queue, faster-fifo and pyzmq
(PUSH/PULL over ipc://, ``copy=False`` both ways) when installed, and the raw
ring (``send_bytes``/``recv_bytes_into`` of the object's bytes: the ceiling);
then ``memcpy`` (one thread, warm buffers), the machine's own limit, in the
same run.  Ratios are to the raw ring and to mp.Queue of the same size and
kind.  ``benchmarks/large_objects.py`` runs the same rows as a script.

Each run is a fresh driver process (drivers.py) that forks the producer;
the producer sends WARM objects untimed (pools, page faults), then `count`
(bounded by bytes, not time); the consumer times from the first of those to
the last.  Every object is checked: two prepared objects alternate, each
carrying its parity in its first and last element (never changed once made:
mp.Queue's feeder and pyzmq's copy=False still read an object after put()
returned), so a lost, repeated or torn object shows.  The
NumPy rows need NumPy (in the test and bench extras) and are skipped without.
"""
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

from ringipc.bench.drivers import cells, run_all, run_driver

LARGE = "large"
SIZES = [1 << 20, 16 << 20, 256 << 20]
QUICK_SIZES = [1 << 20, 16 << 20]
KINDS = ("numpy", "bytes")
TOTAL = 512 << 20       # bytes per timed run: bounds the run by work, not time
QUICK_TOTAL = 64 << 20
MIN_OBJECTS = 3
WARM = 2
RING, MPQ, MEMCPY = "raw ring", "mp.Queue", "memcpy (1 thread)"
FACILITIES = ("ringipc.Queue", "ringipc.Pipe", "shm:// channel", "unix:// channel", MPQ, "faster-fifo",
              "pyzmq copy=False", RING, MEMCPY)


def objects(kind: str, size: int) -> List[Any]:
    """What the producer sends, alternately: two arrays or two bytes objects."""
    if kind == "numpy":
        import numpy

        arrays = [numpy.full(size // 8, 0.5) for _ in (0, 1)]
        for i, arr in enumerate(arrays):
            arr[0] = arr[-1] = i
        return arrays
    return [bytes([i]) * 8 + bytes(size - 16) + bytes([i]) * 8 for i in (0, 1)]


def check(got: Any, kind: str, size: int, seq: int) -> None:
    """Raise unless `got` is object number `seq` (an array, or any buffer of its bytes)."""
    view = memoryview(got).cast("B")
    if view.nbytes != size:
        raise AssertionError(f"object {seq}: {view.nbytes} bytes, expected {size}")
    if kind == "numpy":
        first, last = view[:8].cast("d")[0], view[-8:].cast("d")[0]
        ok = first == last == seq % 2
    else:
        ok = view[0] == view[-1] == seq % 2
    if not ok:
        raise AssertionError(f"object {seq} is not the one sent (lost, repeated or torn)")


# -- facilities: (put, get, close) in the consumer; put runs in the forked producer --
Ends = Tuple[Callable[[Any], Any], Callable[[], Any], Callable[[], Any]]


def _queue(size: int, kind: str) -> Ends:
    import ringipc

    q: Any = ringipc.Queue()
    return q.put, q.get, q.close


def _pipe(size: int, kind: str) -> Ends:
    import ringipc

    a, b = ringipc.Pipe()

    def close() -> None:
        a.close()
        b.close()
    return b.send, a.recv, close


def _mp_queue(size: int, kind: str) -> Ends:
    import multiprocessing

    q = multiprocessing.get_context("fork").Queue()
    return q.put, q.get, q.close


def _faster_fifo(size: int, kind: str) -> Ends:
    import faster_fifo

    q = faster_fifo.Queue(max_size_bytes=3 * size + (1 << 20))
    return q.put, lambda: q.get(timeout=60), q.close


def _ring(size: int, kind: str) -> Ends:
    from ringipc.core._ring import Ring

    ring = Ring(max(4 * size, 1 << 20), "spsc")
    out = bytearray(size)

    def get() -> bytearray:
        ring.recv_bytes_into(out)
        return out
    return lambda obj: ring.send_bytes(memoryview(obj).cast("B")), get, ring.close


ENDS = {"ringipc.Queue": _queue, "ringipc.Pipe": _pipe, MPQ: _mp_queue, "faster-fifo": _faster_fifo, RING: _ring}


def _produce(put: Callable[[Any], Any], kind: str, size: int, count: int) -> None:
    objs = objects(kind, size)
    for seq in range(WARM + count):
        put(objs[seq % 2])


def _consume(get: Callable[[], Any], kind: str, size: int, count: int) -> float:
    for seq in range(WARM):
        check(get(), kind, size, seq)
    start = time.perf_counter()
    for seq in range(WARM, WARM + count):
        check(get(), kind, size, seq)
    return time.perf_counter() - start


def _forked(facility: str, kind: str, size: int, count: int) -> float:
    import multiprocessing

    put, get, close = ENDS[facility](size, kind)
    proc = multiprocessing.get_context("fork").Process(target=_produce, args=(put, kind, size, count))
    proc.start()
    try:
        return _consume(get, kind, size, count)
    except BaseException:
        proc.kill()  # it may be blocked on a full queue nobody reads any more
        raise
    finally:
        proc.join()
        close()


def _channel_produce(address: str, kind: str, size: int, count: int) -> None:
    import ringipc

    with ringipc.connect(address, timeout=30, max_message_size=1 << 30) as ch:
        _produce(ch.send, kind, size, count)
        ch.recv()  # the consumer's all-done: do not close under it


def _channel(address: str, kind: str, size: int, count: int) -> float:
    import multiprocessing

    import ringipc

    with ringipc.listen(address, max_message_size=1 << 30) as lst:
        proc = multiprocessing.get_context("fork").Process(target=_channel_produce,
                                                           args=(lst.address, kind, size, count))
        proc.start()
        try:
            with lst.accept(timeout=30) as ch:
                took = _consume(lambda: ch.recv(timeout=60), kind, size, count)
                ch.send("done")
        except BaseException:
            proc.kill()
            raise
        finally:
            proc.join()
    return took


# Channels: shm:// (rings, large buffers through slabs) and unix:// standing
# for the byte streams (a frame's pieces gathered into one writev).
CHANNELS = {"shm:// channel": "shm://bench-large-{pid}", "unix:// channel": "unix://@ringipc-bench-large-{pid}"}


def _zmq_produce(address: str, kind: str, size: int, count: int) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.connect(address)
    _produce(lambda obj: sock.send(memoryview(obj).cast("B"), copy=False), kind, size, count)
    sock.close(linger=-1)
    ctx.term()


def _zmq(kind: str, size: int, count: int) -> float:
    import multiprocessing

    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            address = f"ipc://{tmp}/large"
            sock.bind(address)
            proc = multiprocessing.get_context("fork").Process(target=_zmq_produce, args=(address, kind, size, count))
            proc.start()
            try:
                took = _consume(lambda: sock.recv(copy=False).buffer, kind, size, count)
            except BaseException:
                proc.kill()  # its close(linger=-1) would wait for ever
                raise
            finally:
                proc.join()
    finally:
        sock.close()
        ctx.term()
    return took


def _memcpy(kind: str, size: int, count: int) -> float:
    from ringipc.core._bulk import copy_into

    src, dst = objects(kind, size)[0], bytearray(size)  # zero-filled, faulted in below
    copy_into(dst, src)  # warm: both buffers faulted in, as the rings' memory is after WARM objects
    start = time.perf_counter()
    for _ in range(count):
        copy_into(dst, src)
    return time.perf_counter() - start


def measure(facility: str, kind: str, size: int, count: int) -> float:
    """Seconds for `count` objects of `size` bytes (after WARM untimed ones); raises on a wrong object."""
    if kind == "numpy":
        import numpy  # noqa: F401  (missing: this row fails with the reason, not a half-run)
    if facility == MEMCPY:
        return _memcpy(kind, size, count)
    if facility in CHANNELS:
        return _channel(CHANNELS[facility].format(pid=os.getpid()), kind, size, count)
    if facility == "pyzmq copy=False":
        return _zmq(kind, size, count)
    return _forked(facility, kind, size, count)


def available(facility: str) -> Optional[str]:
    """Why `facility` cannot run here, or None."""
    module = {"faster-fifo": "faster_fifo", "pyzmq copy=False": "zmq"}.get(facility)
    if module is None:
        return None
    import importlib.util

    return None if importlib.util.find_spec(module) else f"{module} is not installed"


@dataclass
class LargeResult:
    facility: str
    kind: str
    size: int
    count: int
    ok: bool = True
    error: str = ""
    seconds: float = 0.0
    repetition: int = 0

    @property
    def rate(self) -> float:
        """GB/s (10^9 bytes a second)."""
        return self.size * self.count / self.seconds / 1e9 if self.ok and self.seconds else 0.0


def count_for(size: int, quick: bool = False) -> int:
    return max(MIN_OBJECTS, (QUICK_TOTAL if quick else TOTAL) // size)


def run_one(facility: str, kind: str, size: int, count: int, timeout: float = 120.0,
            start_method: str = "forkserver") -> LargeResult:
    ok, value = run_driver(measure, (facility, kind, size, count), "bench-large", timeout, start_method)
    if not ok:
        return LargeResult(facility, kind, size, count, ok=False, error=value)
    return LargeResult(facility, kind, size, count, seconds=value)


def run(settings: Any, quick: bool = False, only: Optional[Callable[[str], bool]] = None,
        on_result: Optional[Callable[..., Any]] = None) -> List[Any]:
    """Every row (the facilities `only` accepts, installed ones), repetitions outermost, the order rotating."""
    sizes = QUICK_SIZES if quick else SIZES
    names = [f for f in FACILITIES if available(f) is None and (only is None or only(f))]
    groups = [[(f, kind, size) for f in names] for size in sizes for kind in KINDS]
    # A big object takes seconds where the machine must fault its memory in: a generous timeout.
    timeout = max(settings.timeout, 120.0)
    return run_all(groups, settings.repeat,
                   lambda cell: run_one(cell[0], cell[1], cell[2], count_for(cell[2], quick), timeout,
                                        settings.start_method), on_result)


@dataclass
class LargeSummary:
    facility: str
    kind: str
    size: int
    runs: int
    ok: bool
    error: str = ""
    rate: float = 0.0  # median GB/s
    all_rates: List[float] = field(default_factory=list)
    vs_ring: Optional[float] = None  # this rate / the raw ring's
    vs_mp: Optional[float] = None  # this rate / mp.Queue's


def summarize(results: Any) -> List[LargeSummary]:
    out = [LargeSummary(c.key[2], c.key[1], c.key[0], c.runs, c.ok, c.error, c.median, c.values)
           for c in cells(results, lambda r: (r.size, r.kind, r.facility), lambda r: r.rate)]
    for s in out:
        peers = {p.facility: p.rate for p in out if p.size == s.size and p.kind == s.kind and p.ok and p.rate}
        if s.ok and s.rate:
            s.vs_ring = s.rate / peers[RING] if RING in peers else None
            s.vs_mp = s.rate / peers[MPQ] if MPQ in peers else None
    return out


def table(summaries: List[LargeSummary]) -> Any:
    from ringipc.bench.report import human_size
    from ringipc.bench.term import SIMPLE, Table

    t = Table(title="Large objects: GB/s, 1 producer -> 1 consumer", title_justify="left", header_style="bold",
              box=SIMPLE, pad_edge=False)
    for col, justify in (("object", "left"), ("facility", "left"), ("GB/s", "right"), ("range", "right"),
                         (f"vs {RING}", "right"), (f"vs {MPQ}", "right")):
        t.add_column(col, justify=justify, no_wrap=True, style="dim" if col == "range" else None)  # type: ignore[arg-type]  # one of rich's justify names
    groups: List[Tuple[int, str]] = []
    for s in summaries:
        if (s.size, s.kind) not in groups:
            groups.append((s.size, s.kind))
    for i, (size, kind) in enumerate(groups):
        if i:
            t.add_section()
        for j, s in enumerate(x for x in summaries if (x.size, x.kind) == (size, kind)):
            if not s.ok:
                row = ["[red]FAILED[/]", "", "", ""]
            else:
                spread = f"{min(s.all_rates):.2f}-{max(s.all_rates):.2f}" if len(s.all_rates) > 1 else ""
                row = [f"{s.rate:.2f}", spread, f"{s.vs_ring:.0%}" if s.vs_ring is not None else "-",
                       f"x{s.vs_mp:.1f}" if s.vs_mp is not None else "-"]
            t.add_row(f"{human_size(size)} {kind}" if j == 0 else "", s.facility, *row)
    return t
