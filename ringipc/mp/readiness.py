"""Readiness of a queue's ring as a file descriptor, and the queue's reader/writer ends.

Standard-library code reaches into the queues it gets from a context:
``multiprocessing.pool`` and ``concurrent.futures.process`` wait on
``queue._reader`` with ``multiprocessing.connection.wait()`` (which polls
``_reader.fileno()``), call ``_reader.recv()``/``poll()`` and
``_writer.send()``/``close()``, and take ``_rlock``.  :class:`ReaderEnd` and
:class:`WriterEnd` give a ringipc queue those two ends.

A ring has no descriptor of its own.  :class:`Watch` gives the reading
process one, and only once somebody asks for ``fileno()``: the ring's
doorbell (ringipc.core.doorbell, csrc/ring_bell.c), kept readable exactly
while the ring holds a message.

* ``fileno()`` (called by every ``wait()``) decides afresh: it drains the
  bell and arms it; if the ring holds a message already it lights the
  descriptor itself, else the next commit by any process rings it.  A wait
  therefore starts exact, and no thread is involved.  It skips all that when
  the ring's read position (``core._ring.read_position``: readers' claim
  counter, bumped by every take in any process) is what it was at the last
  refresh: nothing was taken since, so commits since then rang the bell and
  the descriptor is exact already; nor while a message waits and the
  descriptor is lit by this watch's own light (not drained since).
* Every receive through this process's queue object, after taking a message,
  decides afresh the same way if the ring is now empty, so a receive that
  empties the ring puts the descriptor out before it returns.
* A message taken by *another* process leaves the descriptor lit until the
  next ``fileno()``; a ``wait()`` may then say ready with nothing there, as
  with any descriptor shared by several readers.

Cost: nothing per message while no descriptor was asked for, and nothing
per message for writers while the bell is not armed (one relaxed load in
their notify); one datagram when an armed ring gets its message, a drain
and an arm per receive that empties the ring, and per ``fileno()`` only if
some process took a message since the last of those.
"""
from __future__ import annotations

import os
import threading
import weakref
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

from ..core._ring import Ring as RingType
from ..core._ring import read_position
from ..core.doorbell import Doorbell
from .pickling import dumps, loads

if TYPE_CHECKING:
    from ..core._ring import Ring

_watches: "weakref.WeakSet[Watch]" = weakref.WeakSet()


class Watch:
    """A descriptor that is readable exactly while `ring` holds a message.

    `ring` is a Ring, or anything with a doorbell and ``poll()`` (a topic's
    Subscriber); `position` reads where its readers are.  Without one (not a
    Ring and none given) every ``fileno()`` refreshes.
    """

    def __init__(self, ring: Any, position: Optional[Callable[[], int]] = None) -> None:
        self._ring = ring
        if position is None and isinstance(ring, RingType):
            position = partial(read_position, ring)
        self._position = position
        self._bell = Doorbell(ring)
        # A pool's result thread calls fileno() while other threads receive:
        # one drain-arm-light at a time keeps the last decision the one seen.
        self._lock = threading.Lock()
        # Readers' position when the descriptor was last made exact (None: never).
        self._exact_at: Optional[int] = None
        # This watch lit the descriptor itself and has not drained it since:
        # it is readable for sure (only this watch drains its bell).
        self._lit = False
        _watches.add(self)

    @property
    def active(self) -> bool:
        return not self._bell.closed and not self._bell.inherited

    def fileno(self) -> int:
        # If no process took a message since the descriptor was last made
        # exact, it is exact still (commits since then rang it): skip the
        # drain and arm.  A pool's result thread calls fileno() right after
        # the get that refreshed it, once per result.
        # Nor is there anything to do while a message waits and the
        # descriptor is lit for sure: results queued up for a busy thread
        # then cost it no system call each.
        if self._exact_at is None or self._position is None or self._exact_at != self._position():
            if not (self._lit and self._ring.poll(0)):
                self.refresh()
        return self._bell.fileno()

    def refresh(self) -> None:
        """Make the descriptor say what the ring holds now."""
        bell = self._bell
        with self._lock:
            # Read before the drain: a take that overlaps the refresh then
            # shows as a change, and the next fileno() refreshes again.
            position = self._position() if self._position is not None else None
            bell.drain()
            self._lit = bell.arm()
            if self._lit:
                bell.light()
            self._exact_at = position

    def consumed(self) -> None:
        """After this process took a message: put the descriptor out if the ring is empty."""
        if not self._ring.poll(0) and self.active:
            self.refresh()

    def close(self) -> None:
        self._bell.close()


def _after_fork_in_child() -> None:
    # The parent owns the bells' names and slots; the child's copies of the
    # sockets are only descriptors to close.
    for watch in list(_watches):
        watch._bell._sock.close()
    _watches.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _End:
    """What both ends share: a weak reference to their queue, and closed state."""

    def __init__(self, queue: EndsMixin) -> None:
        # Weak: the queue holds its ends, and a cycle would keep its ring
        # (and name) alive until the cycle collector ran.
        self._ref = weakref.ref(queue)
        self._closed = False

    @property
    def _q(self) -> EndsMixin:
        queue = self._ref()
        if queue is None:
            raise OSError("handle is closed: its queue is gone")
        return queue

    @property
    def closed(self) -> bool:
        queue = self._ref()
        return self._closed or queue is None or queue._closed

    def _check(self) -> None:
        if self._closed:
            raise OSError("handle is closed")


class ReaderEnd(_End):
    """``queue._reader``: what multiprocessing's reading Connection offers stdlib code."""

    def fileno(self) -> int:
        self._check()
        return self._q._watched().fileno()

    def poll(self, timeout: Optional[float] = 0.0) -> bool:
        self._check()
        return self._q._ring.poll(timeout)

    def recv(self) -> Any:
        self._check()
        return self._q.get()

    def recv_bytes(self, maxlength: Optional[int] = None) -> bytes:
        self._check()
        return dumps(self._q.get())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._q._stop_watch()

    def __repr__(self) -> str:
        return f"<reader of {self._ref()!r}>"


class WriterEnd(_End):
    """``queue._writer``: send/close as on multiprocessing's writing Connection."""

    def send(self, obj: Any) -> None:
        self._check()
        self._q.put(obj)

    def send_bytes(self, data: bytes) -> None:
        self._check()
        self._q.put(loads(data))

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"<writer of {self._ref()!r}>"


class EndsMixin:
    """``_reader``, ``_writer``, ``_rlock`` and ``_poll`` for a ringipc queue.

    The queue provides ``_ring``, ``_closed``, ``get()`` and ``put()``, calls
    ``self._watch.consumed()`` after every get while ``_watch`` is set, and
    ``_stop_watch()`` when it closes.  Ends are per process: not pickled."""

    _ring: Ring  # set by the queue (to None only at exit, see sharedstate.pin_rings)
    _closed: bool
    _watch: Optional[Watch] = None
    _ends: Optional[Tuple[ReaderEnd, WriterEnd, threading.Lock]] = None

    if TYPE_CHECKING:  # provided by the queue (of any item type)
        def get(self) -> Any: ...
        def put(self, obj: Any) -> None: ...

    def _make_ends(self) -> Tuple[ReaderEnd, WriterEnd, threading.Lock]:
        self._ends = (ReaderEnd(self), WriterEnd(self), threading.Lock())
        return self._ends

    @property
    def _reader(self) -> ReaderEnd:
        return (self._ends or self._make_ends())[0]

    @property
    def _writer(self) -> WriterEnd:
        return (self._ends or self._make_ends())[1]

    @property
    def _rlock(self) -> threading.Lock:
        # multiprocessing's is a process-shared lock that every get takes;
        # ringipc's gets need none.  Pool.terminate() takes it to keep its
        # own process from reading, which a per-process lock does.
        return (self._ends or self._make_ends())[2]

    @property
    def _poll(self) -> Callable[[Optional[float]], bool]:
        return self._reader.poll

    def _watched(self) -> Watch:
        watch = self._watch
        if watch is None or not watch.active:
            watch = self._watch = Watch(self._ring)
        return watch

    def _stop_watch(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()
