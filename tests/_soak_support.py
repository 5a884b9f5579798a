"""Shared by the ring's kill and soak tests: consumers that report what they
received through a pipe with atomic writes (so a consumer SIGKILLed while
reporting leaves no half record and no lock held), the children's bounded
reaping, and the recovery times the recovery matrix measures (printed at the
end of the run by tests/conftest.py)."""
import mmap
import os
import select
import struct
import time

from _proc_support import reap
from ringipc.core._ring import MAX_SLOTS

import ringcheck

REPORT = struct.Struct("<IQ")  # fixed-size, well under PIPE_BUF: each write is atomic
TIMED_OUT = 0xFFFFFFFE         # REPORT producer id: a receive timed out at `seq` ns (CLOCK_MONOTONIC)


def report(fd, producer, seq):
    os.write(fd, REPORT.pack(producer, seq))


def drain_reporting(ring, report_fd):
    """Child: report every message until a STOP, blocking without a timeout."""
    while True:
        message = ring.recv_bytes()
        producer, seq, _ = ringcheck.HEADER.unpack_from(message)
        if producer == ringcheck.STOP:
            return
        ringcheck.Tally().add(message)  # checksum
        report(report_fd, producer, seq)


def read_reports(fd, pending, limit=None):
    """The reports readable now (waiting up to `limit` seconds for the first,
    forever if None) and the unfinished tail; (None, tail) at EOF.  Raises
    AssertionError if nothing arrives within `limit`."""
    if limit is not None and not select.select([fd], [], [], limit)[0]:
        raise AssertionError(f"no report for {limit} s: the ring's users are stuck")
    chunk = os.read(fd, 64 * REPORT.size)
    if not chunk:
        assert not pending, "a report was torn: pipe writes of PIPE_BUF or less must be atomic"
        return None, pending
    pending += chunk
    whole = len(pending) - len(pending) % REPORT.size
    return [REPORT.unpack_from(pending, i) for i in range(0, whole, REPORT.size)], pending[whole:]


def reap_all(procs, limit):
    """Join every process against one deadline `limit` seconds away; kills
    (and reaps) whatever is left then.  Returns the ones that had to be killed."""
    give_up = time.monotonic() + limit
    stuck = []
    for proc in procs:
        proc.join(max(0.0, give_up - time.monotonic()))
        if proc.exitcode is None:
            stuck.append(proc)
        reap(proc, 0)
    return stuck


def soak_limit(default):
    """How long a soak test waits for its children before calling them stuck:
    RINGIPC_SOAK_LIMIT (seconds) shortens it when checking a known hang."""
    return float(os.environ.get("RINGIPC_SOAK_LIMIT", default))


class Slots:
    """A ring's slot table read from outside, through the segment's file:
    whether a process holds a claim (an intent set in its slot) or sleeps
    counted in a wait."""

    def __init__(self, ring):
        self.lay = ring._debug_layout()
        self.fd = os.open(ring._debug_segment_path(), os.O_RDONLY)
        self.map = mmap.mmap(self.fd, self.lay["segment_size"], prot=mmap.PROT_READ)

    def _word(self, base, field, fmt="<Q"):
        return struct.unpack_from(fmt, self.map, base + self.lay[field])[0]

    def _slot(self, pid):
        for i in range(MAX_SLOTS):
            base = self.lay["slots"] + i * self.lay["slot_stride"]
            if self._word(base, "slot_owner", "<I") == pid:  # the owner word's low half
                return base
        return None

    def state(self, pid):
        """"in a claim", "asleep", "elsewhere", or "no slot" (never used the ring)."""
        base = self._slot(pid)
        if base is None:
            return "no slot"
        if self._word(base, "slot_produce_intent") or self._word(base, "slot_consume_intent"):
            return "in a claim"
        if self._word(base, "slot_data_sleepers", "<I") or self._word(base, "slot_space_sleepers", "<I"):
            return "asleep"
        return "elsewhere"

    def close(self):
        self.map.close()
        os.close(self.fd)


# (test id, seconds from the kill to the release of the stuck position), in run order
RECOVERY_TIMES = []


def recovery_table():
    """Lines for the terminal summary: one row per victim, one column per NxN."""
    cells = {}
    for (victim, n), seconds in RECOVERY_TIMES:
        cells[victim, n] = seconds
    victims = sorted({v for v, _ in cells})
    sizes = sorted({n for _, n in cells})
    lines = ["dead-claim recovery, seconds from SIGKILL to the stuck position's release (goal <= 0.5 s)",
             f"{'victim':<16}" + "".join(f"{f'{n}x{n}':>8}" for n in sizes)]
    for victim in victims:
        row = "".join(f"{cells[victim, n]:>8.3f}" if (victim, n) in cells else f"{'-':>8}" for n in sizes)
        lines.append(f"{victim:<16}" + row)
    return lines


def stop_and_collect(ring, conns, limit):
    """One stop message per consumer, then each consumer's report from its
    pipe end; an AssertionError if one has not reported within `limit` s."""
    for _ in conns:
        ring.send_bytes(ringcheck.stop_message(), timeout=limit)
    outcomes = []
    for conn in conns:
        assert conn.poll(limit), "a consumer never reported: stuck or dead"
        outcomes.append(conn.recv())
    return outcomes
