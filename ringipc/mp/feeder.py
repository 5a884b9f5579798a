"""The per-process buffer behind an unbounded ``put``: used only when the ring is full.

multiprocessing's Queue hands every object to a feeder thread that pickles
and writes it.  Here the caller pickles and writes straight into shared memory;
only a message that finds the ring full goes into this buffer, and a feeder
thread (started the first time that happens) writes it when room appears.
``pending`` counts messages buffered or being written: while it is non-zero,
later puts of this process queue behind them, so per-producer order holds.

At exit a process waits for its buffered messages as multiprocessing's does
(``multiprocessing.util.Finalize`` with the same priorities: the close
sentinel at 10, the join at -5), unless ``cancel_join`` was called.
"""
from __future__ import annotations

import collections
import os
import sys
import threading
import traceback
import weakref
from typing import TYPE_CHECKING, Any, Deque, Optional, Sequence

from multiprocessing import util

if TYPE_CHECKING:
    from ..core._ring import Ring

_live: "weakref.WeakSet[Feeder]" = weakref.WeakSet()


class Feeder:
    def __init__(self, ring: Ring) -> None:
        self._ring = ring
        self._reset()
        _live.add(self)

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._buffer: Deque[Any] = collections.deque()  # encoded messages, and _STOP
        self.pending = 0
        self._thread: Optional[threading.Thread] = None
        self._closing = False
        self._join_cancelled = False
        self._join_finalizer: Optional[util.Finalize] = None
        self._close_finalizer: Optional[util.Finalize] = None

    # -- producer side ------------------------------------------------------
    def push(self, messages: Sequence[Any]) -> None:
        """Queue already-encoded messages behind anything still pending."""
        with self._cond:
            self._buffer.extend(messages)
            self.pending += len(messages)
            if self._thread is None:
                self._start()
            self._cond.notify()

    def _start(self) -> None:
        thread = threading.Thread(target=_run, args=(self._ring, self._cond, self._buffer, weakref.ref(self)),
                                  name="ringipc-feeder", daemon=True)
        thread.start()
        self._thread = thread
        if not self._join_cancelled:
            self._join_finalizer = util.Finalize(thread, _join, [weakref.ref(thread)], exitpriority=-5)
        self._close_finalizer = util.Finalize(self, _close, [self._cond, self._buffer], exitpriority=10)

    def _written(self, count: int) -> None:
        # Called by the thread with the condition held.
        self.pending -= count

    # -- lifetime -----------------------------------------------------------
    def close(self) -> None:
        """No more puts from this process: the thread exits once the buffer is written."""
        self._closing = True
        if self._close_finalizer is not None:
            self._close_finalizer()

    def join(self) -> None:
        if self._join_finalizer is not None:
            self._join_finalizer()

    def cancel_join(self) -> None:
        self._join_cancelled = True
        if self._join_finalizer is not None:
            self._join_finalizer.cancel()


_STOP = object()


def _close(cond: threading.Condition, buffer: Deque[Any]) -> None:
    with cond:
        buffer.append(_STOP)
        cond.notify()


def _join(thread_ref: "weakref.ref[threading.Thread]") -> None:
    thread = thread_ref()
    if thread is not None:
        thread.join()


def _run(ring: Ring, cond: threading.Condition, buffer: Deque[Any],
         owner_ref: "weakref.ref[Feeder]") -> None:
    # Only a weak reference to the feeder: when its queue is collected, the
    # close finalizer sends _STOP and this thread ends, as multiprocessing's does.
    while True:
        with cond:
            while not buffer:
                cond.wait()
            batch = list(buffer)
            buffer.clear()
        stop = False
        written = 0
        for message in batch:
            if message is _STOP:
                stop = True
                break
            try:
                ring.send_bytes(message)
            except Exception:
                # As multiprocessing's feeder: report and carry on with the rest.
                print("ringipc feeder thread: message could not be written", file=sys.stderr)
                traceback.print_exc()
            written += 1
        owner = owner_ref()
        if owner is not None:
            with cond:
                owner._written(written)
                cond.notify_all()
        del owner
        if stop:
            return


def _after_fork_in_child() -> None:
    # The child has no feeder thread and must not write the parent's buffer twice.
    for feeder in list(_live):
        feeder._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
