"""Shared by the asyncio tests: event loops to run on (the default one and
uvloop where installed), and a synchronous facade over ringipc.asyncio's
queues so that the drop-in contract bodies (tests/test_queue_dropin.py) run
against the awaitable objects too."""
import asyncio
import gc
import queue

import pytest

from ringipc import asyncio as ra

try:
    import uvloop
except ImportError:  # not in every environment; the test extra installs it
    uvloop = None

SMALL_CAPACITY = 1 << 14
LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(uvloop is None, reason="uvloop is not installed"))]


def runner(kind):
    return asyncio.Runner(loop_factory=uvloop.new_event_loop if kind == "uvloop" else None)


@pytest.fixture(params=LOOPS)
def run(request):
    """run(coro): runs it to completion on a fresh loop of the given kind."""
    with runner(request.param) as r:
        yield r.run
    # A task's exception, re-raised where it is awaited, holds the awaiting
    # frame, which holds the task: cycles that keep test queues (and their
    # rings) alive until collected.  Not ringipc's: any asyncio program has them.
    gc.collect()


class Facade:
    """The synchronous queue API, every blocking call awaited on `run`'s loop."""

    def __init__(self, aq, run):
        self._aq = aq
        self._run = run

    def _await(self, coro, timeout, timed_out):
        async def go():
            if timeout is None:
                return await coro
            try:
                return await asyncio.wait_for(coro, max(timeout, 0))
            except asyncio.TimeoutError:
                raise timed_out from None
        return self._run(go())

    def put(self, obj, block=True, timeout=None):
        if not block:
            return self._aq.put_nowait(obj)
        return self._await(self._aq.put(obj), timeout, queue.Full)

    def get(self, block=True, timeout=None):
        if not block:
            return self._aq.get_nowait()
        return self._await(self._aq.get(), timeout, queue.Empty)

    def put_nowait(self, obj):
        return self._aq.put_nowait(obj)

    def get_nowait(self):
        return self._aq.get_nowait()

    def join(self):
        return self._run(self._aq.join())

    def close(self):
        self._aq.close()

    def __getattr__(self, name):  # qsize, empty, full, task_done, join_thread, ...
        target = self._aq if hasattr(self._aq, name) else self._aq.sync
        return getattr(target, name)


class AsyncImpl:
    """The ``impl`` fixture's interface, handing out facades."""

    name = "ringipc.asyncio"
    is_ring = True

    def __init__(self, run):
        self._run = run

    def _small(self, small):
        return {"capacity": SMALL_CAPACITY} if small else {}

    def Queue(self, maxsize=0, small=False):
        return Facade(ra.Queue(maxsize, **self._small(small)), self._run)

    def JoinableQueue(self, maxsize=0, small=False):
        return Facade(ra.JoinableQueue(maxsize, **self._small(small)), self._run)

    def SimpleQueue(self, small=False):
        return Facade(ra.SimpleQueue(**self._small(small)), self._run)
