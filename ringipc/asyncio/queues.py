"""Awaitable Queue, SimpleQueue and JoinableQueue over ringipc's queues.

Each wraps a synchronous queue (``.sync``, the object to hand to worker
processes; or pass an existing one with ``queue=``) and shares its ring, so
synchronous producers and asynchronous consumers (or the reverse) talk over
one queue.  ``spin_us`` (every class): how long a wait looks at the ring
before it parks on the loop (ringipc/asyncio/_spin.py; 0 disables).  ``get`` tries the queue without blocking and awaits the ring's
doorbell only when it is empty; the object is taken in that one call, so a
cancelled ``get`` never loses one.  ``put`` on a bounded Queue that is full
awaits the ring's *space* bell, which a get rings once it has freed a slot.
"""
from __future__ import annotations

import queue as _queue
from typing import Any, AsyncIterator, Generic, Optional, TypeVar

from ..mp import queues as _mpq
from ..mp.simplequeue import SimpleQueue as _SyncSimpleQueue
from ._bell import ANY_RELEASE, AsyncBell
from ._closing import ClosesOnExit

__all__ = ["Queue", "SimpleQueue", "JoinableQueue"]

_T = TypeVar("_T")
Empty = _queue.Empty
Full = _queue.Full


class _Awaitable(ClosesOnExit, Generic[_T]):
    """What the three share: the bells of the wrapped queue's ring."""

    sync: Any

    def _bells(self, spin_us: Optional[float]) -> None:
        ring = self.sync._ring
        self._spin_us = spin_us
        self._data = AsyncBell(ring, writer=False, spin_us=spin_us)
        self._space = AsyncBell(ring, writer=True, spin_us=spin_us)

    def __aiter__(self) -> AsyncIterator[_T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[_T]:
        # A queue has no end of stream: iteration stops when it is closed.
        while True:
            try:
                yield await self.get()
            except (OSError, ValueError):
                if self.sync._closed:
                    return
                raise

    async def get(self) -> _T:
        raise NotImplementedError

    def close(self) -> None:
        """Close the queue in this process; awaiting tasks get OSError."""
        self._data.close()
        self._space.close()
        self.sync.close()

    def __reduce__(self) -> Any:
        # Another process gets its own wrapper (its own bells) over the same queue.
        return (type(self)._wrap, (self.sync, self._spin_us))

    @classmethod
    def _wrap(cls, sync: Any, spin_us: Optional[float] = None) -> Any:
        self = cls.__new__(cls)
        self.sync = sync
        self._bells(spin_us)
        return self

    def __repr__(self) -> str:
        return f"<ringipc.asyncio.{type(self).__name__} of {self.sync!r}>"


class SimpleQueue(_Awaitable[_T]):
    """``await q.get()`` / ``await q.put(obj)`` on a ringipc SimpleQueue."""

    def __init__(self, *, capacity: int = _mpq.DEFAULT_CAPACITY, queue: Optional[_SyncSimpleQueue[_T]] = None,
                 spin_us: Optional[float] = None) -> None:
        self.sync = queue if queue is not None else _SyncSimpleQueue(capacity=capacity)
        self._bells(spin_us)

    async def get(self) -> _T:
        q = self.sync
        while True:
            try:
                return q._get_nowait()  # type: ignore[no-any-return]
            except Empty:
                await self._data.wait()

    def get_nowait(self) -> _T:
        return self.sync._get_nowait()  # type: ignore[no-any-return]

    async def put(self, obj: _T) -> None:
        q = self.sync
        data = q._encode(obj)
        size = data.size if hasattr(data, "size") else len(data)
        while True:
            try:
                q._send_nowait(data)
                return
            except Full:
                await self._space.wait(size)

    def put_nowait(self, obj: _T) -> None:
        self.sync._send_nowait(self.sync._encode(obj))

    def empty(self) -> bool:
        return self.sync.empty()  # type: ignore[no-any-return]  # .sync is Any (set by _wrap too)


class Queue(_Awaitable[_T]):
    """``await q.get()`` / ``await q.put(obj)`` on a ringipc Queue (maxsize honoured)."""

    _sync_type: Any = _mpq.Queue

    def __init__(self, maxsize: int = 0, *, capacity: int = _mpq.DEFAULT_CAPACITY,
                 queue: Optional["_mpq.Queue[_T]"] = None, spin_us: Optional[float] = None) -> None:
        self.sync = queue if queue is not None else self._sync_type(maxsize, capacity=capacity)
        self._bells(spin_us)

    async def get(self) -> _T:
        q = self.sync
        while True:
            try:
                return q.get(False)  # type: ignore[no-any-return]
            except Empty:
                await self._data.wait()

    def get_nowait(self) -> _T:
        return self.sync.get(False)  # type: ignore[no-any-return]

    async def put(self, obj: _T) -> None:
        q = self.sync
        while True:
            try:
                # Never waits for the ring: a full ring's messages go to the
                # queue's feeder, as a synchronous put's do.
                q.put(obj, False)
                return
            except Full:
                # Room is a free slot, which a get gives back after the
                # ring's release: arm for any release and look at the slots.
                await self._space.wait(ANY_RELEASE, ready=lambda: q._slots.get_value() > 0)

    def put_nowait(self, obj: _T) -> None:
        self.sync.put(obj, False)

    def qsize(self) -> int:
        return self.sync.qsize()  # type: ignore[no-any-return]

    def empty(self) -> bool:
        return self.sync.empty()  # type: ignore[no-any-return]

    def full(self) -> bool:
        return self.sync.full()  # type: ignore[no-any-return]


class JoinableQueue(Queue[_T]):
    """Queue plus task_done() and ``await join()``."""

    _sync_type = _mpq.JoinableQueue

    def task_done(self) -> None:
        self.sync.task_done()

    async def join(self) -> None:
        """Wait until every object put has been matched by a task_done().

        The count is a process-shared semaphore, which no descriptor shows;
        but the task_done() that brings it to zero (in any process) rings
        the ring's space bells, so this waits on the space bell for any
        release and looks at the count (a get's release wakes it too: it
        looks again and waits on)."""
        unfinished = self.sync._unfinished
        while unfinished.get_value() != 0:
            await self._space.wait(ANY_RELEASE, ready=lambda: unfinished.get_value() == 0)
