"""Kerrisk's taxonomy of IPC facilities (TLPI ch. 43) as one table: each
facility, the ringipc API that offers it, whether it moves a byte stream or
messages, whether reads are destructive or the data is shared, whether it
crosses hosts, how many times the kernel copies each message - and, from a
bench run on this machine, its 64-byte rate and round trip.

``python -m ringipc bench --facilities`` measures the rows that have a bench
facility and prints this table; docs/facilities.md shows one such run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence


@dataclass(frozen=True)
class Facility:
    family: str
    name: str
    api: str
    unit: str             # "byte stream", "messages", "shared state", "synchronisation", "notification"
    reads: str            # "destructive", "shared", "-"
    crosses_hosts: bool
    kernel_copies: str    # per message, user -> kernel -> user
    bench: Optional[str]  # the bench facility measuring it, if any


TAXONOMY: List[Facility] = [
    Facility("data transfer", "pipe", "ringipc.pipe_pair(), pipe://", "byte stream", "destructive", False, "2",
             "ringipc.pipe_pair"),
    Facility("data transfer", "FIFO", "fifo:///PATH", "byte stream", "destructive", False, "2", "ringipc.connect-fifo"),
    Facility("data transfer", "UNIX stream socket", "unix:///PATH, unix://@NAME", "byte stream", "destructive", False,
             "2", "ringipc.connect-unix"),
    Facility("data transfer", "TCP socket", "tcp://HOST:PORT", "byte stream", "destructive", True, "2",
             "ringipc.connect-tcp"),
    Facility("data transfer", "UNIX seqpacket socket", "unixpacket:///PATH", "messages", "destructive", False, "2",
             "ringipc.connect-unixpacket"),
    Facility("data transfer", "UNIX datagram socket", "unixgram:///PATH", "messages", "destructive", False, "2",
             "unixgram.ringipc"),
    Facility("data transfer", "UDP socket", "udp://HOST:PORT", "messages", "destructive", True, "2",
             "udp.ringipc"),
    Facility("data transfer", "POSIX message queue", "mq:///NAME", "messages", "destructive", False, "2",
             "ringipc.connect-mq"),
    Facility("data transfer", "System V message queue", "sysvmq://KEY", "messages", "destructive", False, "2",
             "sysvmq.ringipc"),
    Facility("shared memory", "ring (SPSC/MPMC)", "ringipc.Ring", "messages", "destructive", False,
             "0 (2 memcpy)", "ringipc.Ring-mpmc"),
    Facility("shared memory", "ring as a byte stream", "ringipc.bytestream, shm:// mode=stream", "byte stream",
             "destructive", False, "0", "ringipc.bytestream-shm"),
    Facility("shared memory", "multiprocessing drop-ins", "ringipc.Queue / SimpleQueue / Pipe", "messages",
             "destructive", False, "0", "ringipc.Queue"),
    Facility("shared memory", "broadcast (topic)", "ringipc.Topic", "messages", "shared", False, "0",
             "ringipc.Topic"),
    Facility("synchronisation", "lock, semaphore, event, condition", "ringipc.sync", "synchronisation", "-", False,
             "0 uncontended", "locks"),
    Facility("synchronisation", "file lock (byte range)", "ringipc.sync.FileLock", "synchronisation", "-", False,
             "-", None),
    Facility("signals", "realtime signal with a value", "ringipc.signals", "notification", "destructive", False,
             "1 (siginfo)", None),
]


def bench_names(available: Sequence[str]) -> List[str]:
    """The bench facilities of the taxonomy that this bench knows."""
    return [f.bench for f in TAXONOMY if f.bench in set(available)]


def measured(summaries: Any) -> Dict[str, Dict[str, float]]:
    """{bench facility: {"rate": msg/s, "rtt_ns": round trip}} from a run's summaries (64-byte cells)."""
    out: Dict[str, Dict[str, float]] = {}
    for s in summaries:
        if not s.ok:
            continue
        row = out.setdefault(s.facility, {})
        if s.scenario == "latency":
            row["rtt_ns"] = s.median_ns
        elif s.scenario == "throughput" and s.size == 64:
            row["rate"] = s.rate
    return out


def lock_cells(lock_summaries: Any) -> List[str]:
    """The synchronisation row's two measured cells: ringipc.sync.Lock's uncontended
    acquire+release rate and its cost per acquisition when two processes contend."""
    from ringipc.bench.locks import CONTENDED, NAMES, UNCONTENDED

    got = {s.case: s.ns for s in lock_summaries or [] if s.ok and s.facility == NAMES["ringipc"] and s.ns}
    rate = f"{1e3 / got[UNCONTENDED]:.2f} M/s lock+unlock" if UNCONTENDED in got else "-"
    handoff = f"{got[CONTENDED] / 1e3:.2f} us contended" if CONTENDED in got else "-"
    return [rate, handoff]


def rows(summaries: Any = None, lock_summaries: Any = None) -> List[List[str]]:
    """The table's rows as text, with measurements where the run has them."""
    numbers = measured(summaries or [])
    table = []
    for f in TAXONOMY:
        got = numbers.get(f.bench or "", {})
        rate = f"{got['rate'] / 1e6:.2f} M/s" if "rate" in got else "-"
        rtt = f"{got['rtt_ns'] / 1e3:.1f} us" if "rtt_ns" in got else "-"
        if f.bench == "locks":
            rate, rtt = lock_cells(lock_summaries)
        table.append([f.family, f.name, f.api, f.unit, f.reads, "yes" if f.crosses_hosts else "no",
                      f.kernel_copies, rate, rtt])
    return table


HEADERS = ["family", "facility", "ringipc API", "unit", "reads", "other hosts", "kernel copies/msg",
           "64 B rate", "64 B round trip"]


def markdown(summaries: Any = None) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(summaries)]
    return "\n".join(lines)


def print_table(console: Any, summaries: Any, lock_summaries: Any = None) -> None:
    from ringipc.bench.term import Table

    table = Table(*HEADERS, header_style="bold", title="IPC facilities on this machine (TLPI ch. 43)")
    for row in rows(summaries, lock_summaries):
        table.add_row(*row)
    console.print(table, width=max(console.width, 170))  # nine columns: wider than a default non-tty 80
