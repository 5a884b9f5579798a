"""Drop-in replacement for multiprocessing's SimpleQueue.

Like multiprocessing's, it has no feeder thread, no counts and no timeouts:
``put`` writes into the ring (blocking while it is full) and ``get`` blocks
until an object is there.  Objects larger than a ring message go through a
side segment, as with Queue (see large.py).
"""
from __future__ import annotations

from typing import Any, Generic, TypeVar

from ..core._ring import Ring
from ..core import large
from .pickling import dumps, loads
from ..core.sharedstate import keep_alive_for_child, pin_rings

DEFAULT_CAPACITY = 1 << 20  # per ring; Docker gives /dev/shm only 64 MiB
_T = TypeVar("_T")


class SimpleQueue(Generic[_T]):
    """multiprocessing.SimpleQueue: put blocks while the ring is full, no buffer, no counts."""

    def __init__(self, *, ctx: Any = None, capacity: int = DEFAULT_CAPACITY) -> None:
        self._ring = Ring(capacity, "mpmc")
        large.sweep_when_done(self, self._ring.name)
        self._setup()

    def _setup(self):
        pin_rings(self, self._ring)
        self._closed = False
        self._limit = self._ring.max_message_size

    def __getstate__(self):
        keep_alive_for_child(self)
        return self._ring

    def _release_rings(self):
        self._closed = True
        self._ring = None

    def __setstate__(self, state):
        self._ring = state
        self._setup()

    def __repr__(self):
        return f"<ringipc.SimpleQueue {getattr(self._ring, 'name', None)!r}>"

    def _check_open(self):
        if self._closed:
            raise OSError("handle is closed")

    def empty(self) -> bool:
        self._check_open()
        return not self._ring.poll(0)

    def get(self) -> _T:
        self._check_open()
        data = self._ring.recv_bytes()
        # Every pickle starts with 0x80, a side-segment reference with NUL.
        return loads(data) if data[0] else large.load(data, loads)

    def put(self, obj: _T) -> None:
        self._check_open()
        data = dumps(obj)
        if len(data) > self._limit:
            data = large.export(self._ring.name, data)
        self._ring.send_bytes(data)

    def close(self) -> None:
        self._closed = True

    @property
    def _reader(self):
        return _ClosedView(self)

    _writer = _reader


class _ClosedView:
    # SimpleQueue's close() closes both of multiprocessing's connections; code
    # (and CPython's test) inspects them as ``_reader.closed``/``_writer.closed``.
    def __init__(self, q):
        self._q = q

    @property
    def closed(self):
        return self._q._closed
