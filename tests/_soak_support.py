"""Shared by the ring's kill and soak tests: consumers that report what they
received through a pipe with atomic writes (so a consumer SIGKILLed while
reporting leaves no half record and no lock held), the children's bounded
reaping, and the recovery times the recovery matrix measures (printed at the
end of the run by tests/conftest.py)."""
import os
import select
import struct
import time

from _proc_support import reap

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
