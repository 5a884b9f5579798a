"""Runs one facility in fresh processes and checks what arrived.

A :class:`Session` sets the channel up in the parent, spawns one process per
role (pinned so producer and consumer sit on different cores), lets each child
connect before anything is timed, then runs rounds on command.  Every wait has
a deadline: a facility that hangs or dies is reported as failed and its
children are killed, never waited for.
"""
import multiprocessing
import os
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ringipc.bench.adapters.base import resolved
from ringipc.bench.fanout import check_round, is_fanout, is_fanout_latency, stamped_publisher, stamped_subscriber
from ringipc.bench.payload import combine, expected_digest

START_METHODS = ("spawn", "forkserver")


def context(method: str = "spawn") -> Any:
    """A multiprocessing context whose children are fresh processes.

    spawn starts a new interpreter per child; forkserver forks each child from a
    pristine server process (never from this one, so nothing of the benchmark's
    own state is inherited), which starts in a fraction of the time.
    """
    if method not in START_METHODS:
        raise ValueError(f"start method must be one of {', '.join(START_METHODS)}, not {method!r}")
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        from ringipc.bench.adapters import MODULES

        ctx.set_forkserver_preload([__name__] + MODULES)
    return ctx
THROUGHPUT, LATENCY, MPMC = "throughput", "latency", "mpmc"


def is_latency(scenario: str) -> bool:
    """Scenarios measured in ns per message (round trip, or fan-out to the last subscriber)."""
    return scenario == LATENCY or is_fanout_latency(scenario)


def latency_stats(times: Sequence[float]) -> Dict[str, float]:
    """median, p99, mean, min, max of sorted ns times."""
    return {
        "median": times[len(times) // 2],
        "p99": times[min(len(times) - 1, (len(times) * 99) // 100)],
        "mean": sum(times) / len(times),
        "min": times[0],
        "max": times[-1],
    }


class RunFailed(Exception):
    """The facility lost, corrupted, raised, died or timed out."""


@dataclass
class Result:
    facility: str
    scenario: str
    size: int
    producers: int = 1
    consumers: int = 1
    messages: int = 0
    ok: bool = True
    error: str = ""
    seconds: float = 0.0
    rate: float = 0.0  # messages per second (throughput scenarios)
    latency: Dict[str, float] = field(default_factory=dict)  # ns: median, p99, mean, min, max (latency)
    repetition: int = 0
    skipped: bool = False  # not run because this cell or facility failed earlier

    @property
    def mbps(self) -> float:
        return self.rate * self.size / 1e6


def cpu_plan(producers: int, consumers: int) -> List[Any]:
    """CPU per role (producers first), or Nones when pinning is impossible."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        cpus = []
    if len(cpus) < 2:
        return [None] * (producers + consumers)
    left, right = cpus[0::2], cpus[1::2]
    return [left[i % len(left)] for i in range(producers)] + [right[i % len(right)] for i in range(consumers)]


def _child(facility: Any, role: str, index: int, ends: Any, size: int, producers: int, consumers: int,
           cpu: Optional[int], conn: Any) -> None:
    """Entry point of every benchmark process."""
    send: Any  # the facility's own callables (each role sets those it uses)
    recv: Any
    recv_many: Any
    try:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        if role == "producer":
            send = facility.open_batch_sender(ends[0], size) if facility.batched else facility.open_sender(ends[0], size)
        elif role == "consumer":
            recv_many = facility.open_batch_receiver(ends[0], size) if facility.batched else None
            recv = None if recv_many else facility.open_receiver(ends[0], size)
        elif role == "stamper":
            send = facility.open_sender(ends[0], size)
        elif role == "stamped":
            recv = facility.open_receiver(ends[0], size)
        else:  # ping / echo: (send end, receive end); listen before connect, or two connectors wait on each other
            recv = facility.open_receiver(ends[1], size)
            send = facility.open_sender(ends[0], size)
        facility.connected()
        # Ends that only exist once connected were handed out as Deferred: swap
        # in their targets now, so the timed loops call them directly.
        if role in ("producer", "stamper"):
            send = resolved(send)
        elif role == "consumer":
            recv_many, recv = resolved(recv_many), resolved(recv)
        elif role == "stamped":
            recv = resolved(recv)
        else:
            send, recv = resolved(send), resolved(recv)
        conn.send(("ready", None))
        while True:
            cmd, n = conn.recv()
            if cmd == "exit":
                break
            if role == "producer":
                out = facility.producer(send, n, size, index, consumers)
            elif role == "consumer":
                # Each producer sends n messages and one stop marker per consumer.
                out = facility.consumer(recv, recv_many, size, producers, consumers,
                                        most=producers * (n + consumers))
            elif role == "ping":
                out = facility.ping(send, recv, n, size)
            elif role == "stamper":
                out = stamped_publisher(send, ends[1], n, size, consumers)
            elif role == "stamped":
                out = stamped_subscriber(recv, ends[1], n, size)
            else:
                out = facility.echo(send, recv, size)
            conn.send(("done", out))
        for end in ends[:1] if role in ("stamper", "stamped") else ends:  # ends[1]: the acknowledgement ring
            facility.close_end(end)
        conn.send(("closed", None))
    except BaseException as exc:  # report everything, KeyboardInterrupt included
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"{type(exc).__name__}: {exc} ({os.path.basename(where.filename)}:{where.lineno})"
        try:
            conn.send(("error", f"{role} {index}: {detail}"))
        except Exception:
            pass


class Session:
    """One channel and its processes; ``round(n)`` may be called many times."""

    def __init__(self, facility: Any, scenario: str, size: int, producers: int = 1, consumers: int = 1, timeout: float = 30.0, pin: bool = True,
                 start_method: str = "spawn") -> None:
        self.ctx = context(start_method)
        self.facility, self.scenario, self.size = facility, scenario, size
        self.producers, self.consumers = producers, consumers
        self.timeout = timeout
        self.pin = pin
        self._procs: List[Tuple[str, Any, Any]] = []  # (label, process, connection)
        self._closers: List[Callable[[], None]] = []
        self._broken = False

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> "Session":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> None:
        f, size, P, C = self.facility, self.size, self.producers, self.consumers
        cpus = cpu_plan(P, C) if self.pin else [None] * (P + C)
        try:
            if self.scenario == LATENCY:
                there, back = f.setup(size), f.setup(size)
                self._closers += [there.close, back.close]
                roles: List[Tuple[str, int, Tuple[Any, ...]]] = [("ping", 0, (there.producer_ends[0], back.consumer_ends[0])),
                         ("echo", 0, (back.producer_ends[0], there.consumer_ends[0]))]
            elif is_fanout_latency(self.scenario):
                from ringipc import Ring

                ch = f.setup(size, 1, C)
                acks = Ring(capacity=1 << 16, kind="mpmc")
                self._closers += [ch.close, acks.close]
                roles = [("stamper", 0, (ch.producer_ends[0], acks))]
                roles += [("stamped", i, (e, acks)) for i, e in enumerate(ch.consumer_ends)]
            else:
                ch = f.setup(size, P, C)
                self._closers.append(ch.close)
                roles = [("producer", i, (e,)) for i, e in enumerate(ch.producer_ends)]
                roles += [("consumer", i, (e,)) for i, e in enumerate(ch.consumer_ends)]
            for (role, index, ends), cpu in zip(roles, cpus):
                mine, theirs = self.ctx.Pipe()
                args = (f, role, index, ends, size, P, C, cpu, theirs)
                proc = self.ctx.Process(target=_child, args=args, name=f"bench-{role}-{index}", daemon=True)
                proc.start()
                theirs.close()
                self._procs.append((f"{role} {index}", proc, mine))
        except RunFailed:
            raise
        except Exception as exc:
            raise RunFailed(f"setup: {type(exc).__name__}: {exc}") from exc
        self._collect("ready", self.timeout)

    def close(self) -> None:
        if not self._broken:
            # A clean exit lets producers flush (feeder threads, zmq linger) before the channel goes.
            for _, proc, conn in self._procs:
                try:
                    conn.send(("exit", 0))
                except OSError:
                    pass
            try:
                self._collect("closed", min(self.timeout, 10.0))
            except RunFailed:
                pass
        for _, proc, conn in self._procs:
            proc.join(1.0)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
        self._procs = []
        for close in reversed(self._closers):
            try:
                close()
            except Exception:
                pass
        self._closers = []

    # -- measuring ----------------------------------------------------------------------
    def round(self, n: int) -> Any:
        """Run n messages per producer (n round trips for latency); return a Result."""
        # Receivers first so nothing is timed while a consumer is still being told to start.
        for label, _, conn in sorted(self._procs, key=lambda p: p[0].startswith(("producer", "ping", "stamper"))):
            conn.send(("run", n))
        out = self._collect("done", self.timeout)
        res = Result(self.facility.name, self.scenario, self.size, self.producers, self.consumers)
        if self.scenario == LATENCY:
            times = out["ping 0"]
            res.messages = len(times)
            res.seconds = sum(times) / 1e9
            res.latency = latency_stats(times)
            return res
        if is_fanout_latency(self.scenario):  # each message's latency is its last subscriber's
            per_subscriber = [v for k, v in out.items() if k.startswith("stamped")]
            times = sorted(max(column) for column in zip(*per_subscriber))
            res.messages = len(times)
            res.seconds = sum(times) / 1e9
            res.latency = latency_stats(times)
            return res
        starts = [v for k, v in out.items() if k.startswith("producer")]
        ends = [v[0] for k, v in out.items() if k.startswith("consumer")]
        if is_fanout(self.scenario):  # every subscriber gets the whole stream
            want = expected_digest(self.producers, n)
            problem = check_round([v[1] for k, v in out.items() if k.startswith("consumer")], want)
            if problem:
                raise RunFailed(problem)
            res.messages = want[0] * self.consumers
            res.seconds = (max(ends) - min(starts)) / 1e9
            res.rate = res.messages / res.seconds if res.seconds > 0 else float("inf")
            return res
        got = combine([v[1] for k, v in out.items() if k.startswith("consumer")])
        want = expected_digest(self.producers, n)
        if got != want:
            lost = want[0] - got[0]
            what = f"lost {lost}" if lost > 0 else (f"{-lost} extra" if lost else "wrong set of")
            raise RunFailed(f"{what} messages of {want[0]} (checksums differ)")
        res.messages = want[0]
        res.seconds = (max(ends) - min(starts)) / 1e9
        res.rate = res.messages / res.seconds if res.seconds > 0 else float("inf")
        return res

    def _collect(self, kind: str, timeout: float) -> Dict[Any, Any]:
        """Wait for message ``kind`` from every child; {label: payload}."""
        try:
            return self._wait_all(kind, timeout)
        except RunFailed:
            self._broken = True
            raise

    def _wait_all(self, kind: str, timeout: float) -> Dict[Any, Any]:
        deadline = time.monotonic() + timeout
        pending = {conn: (label, proc) for label, proc, conn in self._procs}
        out = {}
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                names = ", ".join(sorted(label for label, _ in pending.values()))
                raise RunFailed(f"timed out after {timeout:g} s waiting for {names}")
            sentinels = {proc.sentinel: conn for conn, (_, proc) in pending.items()}
            for ready in wait(list(pending) + list(sentinels), left):
                conn = sentinels.get(ready, ready)
                if conn not in pending:
                    continue
                label, proc = pending[conn]
                if not conn.poll():
                    raise RunFailed(f"{label} exited with code {proc.exitcode} without reporting")
                try:
                    what, payload = conn.recv()
                except EOFError:
                    raise RunFailed(f"{label} exited with code {proc.exitcode} without reporting") from None
                if what == "error":
                    raise RunFailed(payload)
                if what == kind:
                    out[label] = payload
                    del pending[conn]
        return out


MIN_COUNT, MAX_COUNT = 20, 5_000_000


def count_for(result: Any, target: float, producers: int = 1) -> int:
    """Messages per producer (or round trips) that last about ``target`` s at ``result``'s pace."""
    if is_latency(result.scenario):
        rate = 1e9 / max(1.0, result.latency["mean"])
    else:
        rate = result.rate / producers
    return int(min(MAX_COUNT, max(MIN_COUNT, rate * target)))


def run_once(facility: Any, scenario: str, size: int, n: int, producers: int = 1, consumers: int = 1, timeout: float = 30.0, pin: bool = True,
             warmup: float = 0.1, target: Optional[float] = None, start_method: str = "spawn") -> Any:
    """Fresh processes, one measured round, torn down: the unit of ``python -m ringipc bench``.

    An untimed round of ``warmup * n`` messages goes first: it faults in fresh
    segments and socket buffers and wakes both processes, so the timed round
    measures the steady state rather than the first touch.  With ``target``
    (seconds) the timed round's count comes from the warm-up's pace, so even a
    first run of a facility much faster or slower than guessed lasts about that long.
    """
    session = Session(facility, scenario, size, producers, consumers, timeout, pin, start_method)
    try:
        session.start()
        if warmup:
            warm = session.round(max(1, int(n * warmup)))
            if target:
                n = count_for(warm, target, producers)
        res = session.round(n)
        # A tiny warm-up can misjudge the pace (fixed start-up costs): a timed round far
        # shorter than the target is too noisy to keep, so it is redone at the pace it showed.
        for _ in range(2):
            if not target or res.seconds >= target / 4:
                break
            res = session.round(count_for(res, target, producers))
        return res
    except RunFailed as exc:
        return Result(facility.name, scenario, size, producers, consumers, ok=False, error=str(exc))
    finally:
        session.close()
