"""Busy-polling a ring before parking on its doorbell (``spin_us=``).

Parking a task on a doorbell costs a round of the loop's selector on the
waiting side and a ``sendto`` on the ringing side; between two processes
that answer each other within microseconds that is most of a round trip.
So a wait that finds the ring empty (or full) first looks at the ring for a
short, bounded time - in C, with the GIL released, so other threads run -
and parks only if nothing came.  Nothing is armed while it looks, so the
other side's commit makes no system call either.

Spinning must never starve the loop's other work:

* It happens only when the loop has nothing else to run now.  For the
  default loops (asyncio's selector and proactor loops) that is their
  ``_ready`` deque - an implementation detail of CPython's asyncio, read
  with ``getattr`` so that a loop without it falls to the next rule.
* A loop whose run queue cannot be seen (uvloop, others) gets at most
  ``OPAQUE_LOOP_SPIN_US``: a few microseconds are the same delay any
  callback of that loop may impose on the others.
* I/O that became ready meanwhile, and timers that fall due, wait at most
  the spin; a spin is capped at ``MAX_SPIN_US`` (Ctrl-C too waits that long).
* It adapts: after ``GIVE_UP`` spins in a row that ended in parking, only
  every ``PROBE_EVERY``-th wait spins (until one pays again), so a consumer
  whose producer is idle or not running burns next to nothing.  Not a
  halving budget as the ring's synchronous waits use: in a round trip both
  sides must spin at once, and after a preemption a side only catches the
  other's answer again if its spin is as long as the other's wake-up from
  the loop, so a spin is either full or skipped.
"""
from __future__ import annotations

import asyncio
import os
from typing import Optional

__all__ = ["Spin", "DEFAULT_SPIN_US", "MAX_SPIN_US", "OPAQUE_LOOP_SPIN_US"]


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# One CPU: the peer cannot run while we spin, so spinning only delays it.
DEFAULT_SPIN_US = 50.0 if _cpus() > 1 else 0.0
MAX_SPIN_US = 10_000.0
OPAQUE_LOOP_SPIN_US = 5.0
GIVE_UP = 8
PROBE_EVERY = 16


def check_spin_us(spin_us: Optional[float]) -> float:
    """`spin_us` as given to an object of this package (None: the default)."""
    if spin_us is None:
        return DEFAULT_SPIN_US
    if isinstance(spin_us, bool) or not isinstance(spin_us, (int, float)):
        raise TypeError(f"spin_us must be a number of microseconds, not {type(spin_us).__name__}")
    if not 0 <= spin_us <= MAX_SPIN_US:  # also refuses NaN
        raise ValueError(f"spin_us must be between 0 and {MAX_SPIN_US:g}, got {spin_us!r}")
    return float(spin_us)


class Spin:
    """The spin policy of one bell (one ring handle and direction)."""

    __slots__ = ("full", "fails", "waits")

    def __init__(self, spin_us: Optional[float]) -> None:
        self.full = check_spin_us(spin_us) * 1e-6  # seconds
        self.fails = 0  # spins in a row that ended in parking
        self.waits = 0

    def seconds(self, loop: asyncio.AbstractEventLoop) -> float:
        """How long this wait may spin on `loop` (0: park at once)."""
        if not self.full:
            return 0.0
        ready = getattr(loop, "_ready", None)
        if ready is None:
            limit = min(self.full, OPAQUE_LOOP_SPIN_US * 1e-6)
        elif ready:
            return 0.0  # other callbacks are waiting to run: do not delay them
        else:
            limit = self.full
        if self.fails >= GIVE_UP:
            self.waits += 1
            if self.waits % PROBE_EVERY:
                return 0.0
        return limit

    def paid(self, ok: bool) -> None:
        self.fails = 0 if ok else self.fails + 1
