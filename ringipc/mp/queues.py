"""Drop-in replacements for multiprocessing's Queue and JoinableQueue.

Objects are pickled by the caller (an unpicklable object raises in ``put``) and
written straight into an MPMC ring; see feeder.py for what happens when the
ring is full and large.py for objects larger than its max_message_size.
``maxsize`` and ``qsize()`` use a semaphore of free slots (ringipc.sync's, in
the same kind of segment as the ring), taken before a message is written and
given back after it is read.  A queue made without a name lives in anonymous
memory and reaches other processes only by inheritance and multiprocessing's
descriptor passing; with ``name=`` it can be pickled to any process.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, List, Optional, Tuple, TypeVar, Union
import queue as _queue
import time
import weakref

from ..core._ring import Ring
from ..core import large
from . import oob
from .feeder import Feeder
from .lease import Lease, lease_of
from .pickling import _LEN1, _PLAIN, _SHORT_BINBYTES, PROTOCOL, _join, _plain_dumps, dumps_bytes, loads
from .readiness import EndsMixin
from ..core.sharedstate import keep_alive_for_child, pin_rings
from ..sync._sync import SEM_VALUE_MAX as VALUE_MAX, Semaphore

DEFAULT_CAPACITY = 1 << 20  # per ring; Docker gives /dev/shm only 64 MiB
DEFAULT_BATCH = 1000
_OOB_MIN = oob.OOB_MIN_BUFFER  # bound once: put() of bytes checks it on its fast path
Empty = _queue.Empty
Full = _queue.Full
_T = TypeVar("_T")


def _part(name: Optional[str], role: str) -> Optional[str]:
    """The name of a named queue's part (its ring has the queue's name)."""
    return None if name is None else f"{name}-{role}"


def _decode(data: bytes) -> Any:
    if not data[0]:
        if oob.is_frame(data):
            return oob.decode(data)
        if large.is_reference(data):
            return large.load(data, oob.decode_payload)
    return loads(data)


def _slot_releaser(queue_ref: "weakref.ref[Queue[Any]]", release: Callable[[], None]) -> Callable[[], None]:
    def release_slot() -> None:
        release()
        queue = queue_ref()
        ring = queue._ring if queue is not None else None
        if ring is not None:  # None once released at exit
            ring._notify_writers()
    return release_slot


class Queue(EndsMixin, Generic[_T]):
    """multiprocessing.Queue on a shared-memory ring; ``capacity`` is the ring's size in bytes."""

    def __init__(self, maxsize: int = 0, *, ctx: Any = None, capacity: int = DEFAULT_CAPACITY,
                 name: Optional[str] = None) -> None:
        if maxsize <= 0 or maxsize > VALUE_MAX:
            maxsize = VALUE_MAX
        self._maxsize = maxsize
        self._ring = Ring(capacity, "mpmc", name=name)
        self._slots = Semaphore(maxsize, name=_part(name, "slots"))
        large.sweep_when_done(self, self._ring.name)
        self._setup()

    def _setup(self) -> None:
        pin_rings(self, self._ring)
        self._closed = False
        self._feeder = Feeder(self._ring)
        self._limit = self._ring.max_message_size
        self._send = self._ring.send_bytes
        self._recv = self._ring.recv_bytes
        self._release: Callable[[], None] = self._slots.release
        if self._maxsize != VALUE_MAX:
            # A bounded queue's put waits for a slot, which a get frees after
            # the ring's release has rung writers' doorbells: ring them again
            # once the slot is free (ringipc.asyncio's put waits on them).
            # Only a fence and a load unless somebody waits.  Weak: a bound
            # method kept on self would make every bounded queue a cycle.
            self._release = _slot_releaser(weakref.ref(self), self._slots.release)
        self._take = self._slots.acquire  # called with False: never waits, no system call
        self._slow_puts = False
        self._watch = self._ends = None

    def _release_rings(self) -> None:
        # At exit, after the feeder was joined: see sharedstate.pin_rings.
        self._closed = True
        self._ring = self._send = self._recv = self._feeder = self._watch = None  # type: ignore[assignment]  # at exit only

    def __getstate__(self) -> Tuple[Any, ...]:
        keep_alive_for_child(self)
        return self._ring, self._slots, self._maxsize

    def __setstate__(self, state: Tuple[Any, ...]) -> None:
        self._ring, self._slots, self._maxsize = state
        self._setup()

    def __repr__(self) -> str:
        return f"<ringipc.{type(self).__name__} {getattr(self._ring, 'name', None)!r}>"

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")

    def _took_slot(self, count: int) -> None:
        """Hook for JoinableQueue: runs after slots are taken, before the write."""

    def _put_slow(self, obj: Any, block: bool, timeout: Optional[float],
                  data: Union[bytes, oob.Frame, None] = None) -> None:
        if data is None:
            data = oob.encode(obj)  # bytes, or a frame of large buffers
        if not self._slots.acquire(block, timeout):
            raise Full
        try:
            if type(data) is oob.Frame or len(data) > self._limit:
                # Written once into a slab (core/slabs.py); the ring carries a
                # reference, so the object is read out with one copy (or none).
                data = large.export(self._ring.name, data, self, block, timeout)
            self._took_slot(1)
        except BaseException:
            self._release()
            raise
        if not self._feeder.pending:
            try:
                self._send(data, False)
                return
            except Full:
                pass
        self._feeder.push((data,))

    # -- multiprocessing.Queue API -------------------------------------------
    def put(self, obj: _T, block: bool = True, timeout: Optional[float] = None) -> None:
        # The common case (plain object, room for it, nothing buffered) is
        # written out inline: each call saved is a noticeable share of a put.
        if self._closed:
            self._check_open()
        kind = type(obj)
        if kind is bytes:
            n = len(obj)  # type: ignore[arg-type]  # bytes: mypy does not narrow a TypeVar on type()
            if n >= _OOB_MIN:
                return self._put_slow(obj, block, timeout)
            data = _join((_SHORT_BINBYTES, _LEN1[n], obj, b".")) if n < 256 else dumps_bytes(obj)
        elif kind in _PLAIN:
            data = _plain_dumps(obj, PROTOCOL)
        else:
            return self._put_slow(obj, block, timeout)
        if len(data) > self._limit or self._slow_puts:
            return self._put_slow(obj, block, timeout, data)
        if not self._take(False) and not self._slots.acquire(block, timeout):
            raise Full
        if not self._feeder.pending:
            try:
                self._send(data, False)
                return
            except Full:
                pass
        self._feeder.push((data,))

    def get(self, block: bool = True, timeout: Optional[float] = None) -> _T:
        # get_lease() starts the same way; a shared helper would cost every
        # get a call (some 30-40 ns of ~430 in-process), as put's inlining says.
        if self._closed:
            self._check_open()
        data = self._recv(block, timeout)
        self._release()
        if self._watch is not None:
            self._watch.consumed()
        # Every pickle starts with 0x80, a side-segment reference with NUL.
        if data[0]:
            # The short-bytes pickle put() builds: the object is the middle.
            if data[2] == 0x43 and len(data) == data[3] + 5 and data[-1] == 0x2E:
                return data[4:-1]  # type: ignore[return-value]  # the bytes object that was put
            return loads(data)  # type: ignore[no-any-return]  # unpickled: the item type is the caller's word
        return _decode(data)  # type: ignore[no-any-return]  # likewise

    def get_lease(self, block: bool = True, timeout: Optional[float] = None) -> Lease[Any]:
        """As get(), without copying the object's large buffers: they look
        into shared memory until the lease is released (see lease.py)."""
        if self._closed:
            self._check_open()
        data = self._recv(block, timeout)
        self._release()
        if self._watch is not None:
            self._watch.consumed()
        return lease_of(data)

    def put_nowait(self, obj: _T) -> None:
        return self.put(obj, False)

    def get_nowait(self) -> _T:
        return self.get(False)

    def qsize(self) -> int:
        """Objects put and not yet got, including those still in a producer's buffer."""
        return self._maxsize - self._slots.get_value()

    def empty(self) -> bool:
        return not self._ring.poll(0)

    def full(self) -> bool:
        return self._slots.get_value() == 0

    def close(self) -> None:
        self._closed = True
        self._stop_watch()
        if self._ring is not None:
            large.sender_closed(self._ring.name, self)
        if self._feeder is not None:
            self._feeder.close()

    def join_thread(self) -> None:
        assert self._closed, f"Queue {self!r} not closed"
        if self._feeder is not None:
            self._feeder.join()

    def cancel_join_thread(self) -> None:
        if self._feeder is not None:
            self._feeder.cancel_join()

    # -- batches ----------------------------------------------------------------
    def put_many(self, objs: Iterable[_T], block: bool = True, timeout: Optional[float] = None) -> None:
        """Put every object, in order, or none: raises Full (nothing put) if
        slots for all of them are not free within `timeout`."""
        self._check_open()
        datas: List[Any] = []  # bytes, then large references in place of frames
        append = datas.append
        obj: Any  # bytes is tested with type(), which mypy does not narrow a TypeVar on
        for obj in objs:
            if type(obj) is bytes and len(obj) < 256:
                append(_join((_SHORT_BINBYTES, _LEN1[len(obj)], obj, b".")))
            else:
                append(oob.encode(obj))
        n = len(datas)
        if n == 0:
            return
        taken = 0
        take = self._take
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while taken < n:
                if not take(False):
                    left = None if deadline is None else deadline - time.monotonic()
                    if not self._slots.acquire(block, left):
                        raise Full from None
                taken += 1
            limit = self._limit
            for i, data in enumerate(datas):
                if type(data) is oob.Frame or len(data) > limit:
                    datas[i] = large.export(self._ring.name, data, self, block, timeout)
            self._took_slot(n)
        except BaseException:
            for _ in range(taken):
                self._release()
            for data in datas:
                if type(data) is bytes and large.is_reference(data):
                    large.discard(data)
            raise
        if not self._feeder.pending:
            try:
                self._ring.send_bytes_many(datas, False)
                return
            except Full as exc:
                datas = datas[exc.sent:]  # type: ignore[attr-defined]  # set by Ring; the feeder sends the rest
        self._feeder.push(datas)

    def get_many(self, max_messages: int = DEFAULT_BATCH, block: bool = True, timeout: Optional[float] = None) -> List[_T]:
        """Wait like get() for one object, then also take up to `max_messages`
        in all that are already there; returns a list."""
        self._check_open()
        datas = self._ring.recv_bytes_many(max_messages, block, timeout)
        if self._watch is not None:
            self._watch.consumed()
        release = self._release
        out: List[Any] = []
        append = out.append
        for data in datas:
            release()
            if not data[0]:
                append(_decode(data))
            elif data[2] == 0x43 and len(data) == data[3] + 5 and data[-1] == 0x2E:
                append(data[4:-1])  # see get()
            else:
                append(loads(data))
        return out


class JoinableQueue(Queue[_T]):
    """multiprocessing.JoinableQueue: adds task_done() and join()."""

    def __init__(self, maxsize: int = 0, *, ctx: Any = None, capacity: int = DEFAULT_CAPACITY,
                 name: Optional[str] = None) -> None:
        super().__init__(maxsize, ctx=ctx, capacity=capacity, name=name)
        self._unfinished = Semaphore(0, name=_part(name, "unfinished"))
        # Posted when a task_done() brings the count to zero; joiners pass it on.
        self._all_done = Semaphore(0, name=_part(name, "all-done"))
        self._slow_puts = True

    def __getstate__(self) -> Tuple[Any, ...]:
        return super().__getstate__() + (self._unfinished, self._all_done)

    def __setstate__(self, state: Tuple[Any, ...]) -> None:
        super().__setstate__(state[:3])
        self._unfinished, self._all_done = state[3:]
        self._slow_puts = True

    def _took_slot(self, count: int) -> None:
        post = self._unfinished.release
        for _ in range(count):
            post()

    def task_done(self) -> None:
        if not self._unfinished.acquire(False):
            raise ValueError("task_done() called too many times")
        if self._unfinished.get_value() == 0:
            if self._all_done.get_value() == 0:
                self._all_done.release()
            # And ring the space bells: how an asyncio joiner waits
            # (ringipc.asyncio.JoinableQueue.join).  A fence and a load
            # when nobody waits, and only when the count reaches zero.
            ring = self._ring
            if ring is not None:
                ring._notify_writers()

    def join(self) -> None:
        """Block until every object put has been matched by a task_done()."""
        while self._unfinished.get_value() != 0:
            # Slices bound the wait should a wake-up be lost to a killed peer.
            self._all_done.acquire(True, 0.1)
        if self._all_done.get_value() == 0:
            self._all_done.release()  # wake the next joiner


from .simplequeue import SimpleQueue as SimpleQueue  # noqa: E402,F401  (one import place for the three queues)
