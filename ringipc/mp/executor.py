"""ProcessPoolExecutor with its call queue on a ring, and that call queue.

``concurrent.futures.ProcessPoolExecutor`` takes its result queue from its
context (``mp_context.SimpleQueue()``) but builds its call queue itself:
``concurrent.futures.process._SafeQueue``, a ``multiprocessing.queues.Queue``
subclass made from module-level ``connection.Pipe``, so no context can choose
it.  Every task then crosses an OS pipe through a feeder thread: a futex wake
of that thread and its GIL hand-offs per task, the cost that kept an executor
on ringipc's context near multiprocessing's speed.

:class:`CallQueue` is ``_SafeQueue``'s contract on a ringipc Queue: bounded
(the executor sizes it), ``put``/``put_nowait``/``full``/``close``/
``join_thread``/``_reader``, and an object that fails to pickle becomes its
future's exception through the standard library's own
``_SafeQueue._on_queue_feeder_error`` (called, not copied, so each Python
version's behaviour is kept).  ringipc's ``put`` pickles in the caller (the
executor's manager thread), so that hook runs there rather than in a feeder
thread.

Two ways in: :class:`ProcessPoolExecutor` (a subclass: same arguments, a
ringipc context by default, a multiprocessing context is wrapped in one) and
``ringipc.install()``, which replaces ``_SafeQueue`` itself while installed.
"""
from __future__ import annotations

import concurrent.futures.process as _cfp
import threading
from typing import Any, Optional

from . import oob, queues
from .context import RingContext, get_context

# Captured at import, before install() can replace the name with CallQueue.
_STDLIB_SAFE_QUEUE: Any = _cfp._SafeQueue


class CallQueue(queues.Queue[Any]):
    """``concurrent.futures.process._SafeQueue`` on a ring (same constructor)."""

    def __init__(self, max_size: int = 0, *, ctx: Any, pending_work_items: Any,
                 shutdown_lock: Any = None, thread_wakeup: Any = None, **kwargs: Any) -> None:
        # shutdown_lock and thread_wakeup exist from Python 3.9; the hook below
        # uses whichever its version's _SafeQueue has.
        self.pending_work_items = pending_work_items
        self.shutdown_lock = shutdown_lock
        self.thread_wakeup = thread_wakeup
        if isinstance(ctx, RingContext):
            kwargs = ctx._sized(kwargs)
        super().__init__(max_size, ctx=ctx, **kwargs)

    def put(self, obj: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        # Encoded here, apart from the write, so that only a failure to pickle
        # goes to the executor's hook (Full and a closed queue still raise).
        if self._closed:
            self._check_open()
        try:
            data = oob.encode(obj)
        except Exception as e:
            self._on_queue_feeder_error(e, obj)
            return
        self._put_slow(obj, block, timeout, data)

    def _on_queue_feeder_error(self, e: BaseException, obj: Any) -> None:
        if isinstance(obj, _cfp._CallItem):
            # Fails the call item's future and wakes the manager thread.
            _STDLIB_SAFE_QUEUE._on_queue_feeder_error(self, e, obj)
            return
        raise e  # the executor puts only call items and None


class _Wakeup(_cfp._ThreadWakeup):  # private; both overrides call the original
    """The manager thread's wake-up pipe, written once per batch of wake-ups.

    ``submit`` wakes the manager thread for every task: a pipe write, and for
    the thread a poll and a read to clear it (each releasing the GIL to the
    other thread), and the manager polls the pipe after every result.  One
    message not yet cleared already guarantees that the manager runs its
    loop again (it clears, then looks at the work queue and the shutdown
    flags), so later wake-ups until then write nothing, and a clear with
    nothing written makes no system call.  A lock of its own keeps
    ``_pending`` true exactly while a message is in the pipe.  (The standard
    library clears without the executor's shutdown lock because a full pipe
    would deadlock them, cpython#105829; this pipe holds one message at most,
    so neither side ever blocks holding this lock.)"""

    def __init__(self) -> None:
        super().__init__()
        self._pending = False
        self._state = threading.Lock()

    def wakeup(self) -> None:
        with self._state:
            if not self._pending:
                super().wakeup()
                self._pending = not self._closed

    def clear(self) -> None:
        with self._state:
            if self._pending:
                super().clear()
                self._pending = False


# The executor's attribute for its wake-up (renamed in Python 3.9).
_WAKEUP_ATTRS = ("_executor_manager_thread_wakeup", "_queue_management_thread_wakeup")


class ProcessPoolExecutor(_cfp.ProcessPoolExecutor):
    """``concurrent.futures.ProcessPoolExecutor`` whose call and result queues are ringipc's.

    Same arguments.  ``mp_context`` chooses how workers start, as for the
    standard library's; ``None`` means ringipc's default context (spawn when
    ``max_tasks_per_child`` is given, as the standard library does from 3.11),
    and a multiprocessing context is used with ringipc's queues."""

    def __init__(self, max_workers: Optional[int] = None, mp_context: Any = None,
                 *args: Any, **kwargs: Any) -> None:
        if mp_context is None:
            spawn = kwargs.get("max_tasks_per_child") is not None
            mp_context = get_context("spawn" if spawn else None)
        elif not isinstance(mp_context, RingContext):
            mp_context = RingContext(mp_context)
        super().__init__(max_workers, mp_context, *args, **kwargs)
        # Workers and the manager thread start at the first submit, so nothing
        # has used the wake-up or the call queue yet: swap them before anyone does.
        wakeup = None
        for attr in _WAKEUP_ATTRS:
            old_wakeup = getattr(self, attr, None)
            if isinstance(old_wakeup, _cfp._ThreadWakeup) and type(old_wakeup) is not _Wakeup:
                wakeup = _Wakeup()
                setattr(self, attr, wakeup)
                old_wakeup.close()
                break
        old = self._call_queue  # type: ignore[has-type]  # set by the base class
        if isinstance(old, CallQueue):  # install() is in effect: already a ring
            if wakeup is not None and old.thread_wakeup is not None:
                old.thread_wakeup = wakeup
            return
        new = CallQueue(old._maxsize, ctx=mp_context, pending_work_items=old.pending_work_items,
                        shutdown_lock=getattr(old, "shutdown_lock", None),
                        thread_wakeup=wakeup or getattr(old, "thread_wakeup", None))
        new._ignore_epipe = True  # type: ignore[attr-defined]  # as the base class sets it
        self._call_queue = new
        old._reader.close()
        old._writer.close()
