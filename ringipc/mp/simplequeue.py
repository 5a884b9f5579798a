"""Drop-in replacement for multiprocessing's SimpleQueue.

Like multiprocessing's, it has no feeder thread, no counts and no timeouts:
``put`` writes into the ring (blocking while it is full) and ``get`` blocks
until an object is there.  Large buffers travel out of band (oob.py),
through a reused side segment, as with Queue (see large.py).
"""
from __future__ import annotations

from typing import Any, Generic, Optional, TypeVar, Union

from ..core._ring import Ring
from ..core import large
from . import oob
from .pickling import loads
from .readiness import EndsMixin
from ..core.sharedstate import keep_alive_for_child, pin_rings

DEFAULT_CAPACITY = 1 << 20  # per ring; Docker gives /dev/shm only 64 MiB
_T = TypeVar("_T")


class SimpleQueue(EndsMixin, Generic[_T]):
    """multiprocessing.SimpleQueue: put blocks while the ring is full, no buffer, no counts."""

    def __init__(self, *, ctx: Any = None, capacity: int = DEFAULT_CAPACITY, name: Optional[str] = None) -> None:
        self._ring = Ring(capacity, "mpmc", name=name)
        large.sweep_when_done(self, self._ring.name)
        self._setup()

    def _setup(self) -> None:
        pin_rings(self, self._ring)
        self._closed = False
        self._watch = self._ends = None
        self._limit = self._ring.max_message_size

    def __getstate__(self) -> Ring:
        keep_alive_for_child(self)
        return self._ring

    def _release_rings(self) -> None:
        self._closed = True
        self._ring = self._watch = None  # type: ignore[assignment]  # at exit: see sharedstate.pin_rings

    def __setstate__(self, state: Ring) -> None:
        self._ring = state
        self._setup()

    def __repr__(self) -> str:
        return f"<ringipc.SimpleQueue {getattr(self._ring, 'name', None)!r}>"

    def _check_open(self) -> None:
        if self._closed:
            raise OSError("handle is closed")

    def empty(self) -> bool:
        self._check_open()
        return not self._ring.poll(0)

    def get(self) -> _T:
        self._check_open()
        data = self._ring.recv_bytes()
        if self._watch is not None:
            self._watch.consumed()
        # Every pickle starts with 0x80; a side-segment reference and an
        # out-of-band frame with NUL.
        if data[0]:
            return loads(data)  # type: ignore[no-any-return]  # unpickled: the item type is the caller's word
        return oob.decode(data) if oob.is_frame(data) else large.load(data, oob.decode_payload)  # type: ignore[no-any-return]  # likewise

    def put(self, obj: _T) -> None:
        self._check_open()
        data = oob.encode(obj)
        if type(data) is not oob.Frame and len(data) <= self._limit:
            self._ring.send_bytes(data)
            return
        # Large buffers go once into a slab, the ring carries a reference (large.py).
        self._ring.send_bytes(large.export(self._ring.name, data, self))

    # -- for ringipc.asyncio: the same, never blocking ---------------------------
    def _get_nowait(self) -> Any:
        """get(), or queue.Empty at once."""
        self._check_open()
        data = self._ring.recv_bytes(False)
        if self._watch is not None:
            self._watch.consumed()
        if data[0]:
            return loads(data)
        return oob.decode(data) if oob.is_frame(data) else large.load(data, oob.decode_payload)

    def _encode(self, obj: Any) -> Union[bytes, oob.Frame]:
        """What put() writes: encoded once, so that retries after queue.Full
        do not export a large object again."""
        self._check_open()
        data = oob.encode(obj)
        if (data.size if type(data) is oob.Frame else len(data)) <= self._limit:
            return data
        return large.export(self._ring.name, data, self)

    def _send_nowait(self, data: Union[bytes, oob.Frame]) -> None:
        """Write what _encode() made, or queue.Full at once."""
        self._check_open()
        if type(data) is oob.Frame:
            oob.send(self._ring, data, False)
        else:
            self._ring.send_bytes(data, False)

    def close(self) -> None:
        self._closed = True
        self._stop_watch()
        if self._ring is not None:
            large.sender_closed(self._ring.name, self)
