"""Zero-copy receive: an object whose large buffers look into shared memory.

``Queue.get_lease()`` and ``Connection.recv_lease()`` return a Lease: its
``obj`` is rebuilt with ``copy=False`` (oob.py), so NumPy arrays, bytes-like
parts and memoryviews of it are views of the sender's slab (core/slabs.py),
not copies; reading a 16 MiB frame costs as little as reading a 16 KiB one.
While the lease is held its slab stays taken: the sender never writes into it
(it uses its other slabs, waits for one, and after slabs.GIVE_UP seconds falls
back to a fresh one-off segment).  ``release()`` (or leaving the ``with``
block, or dropping the lease) hands the slab back; the object must not be
used after that, because its memory is then the sender's to overwrite.
A large ``bytes`` object comes back as a memoryview (bytes cannot look into
other memory).  Objects that travelled in the ring itself (small ones) are
ordinary copies and their lease holds nothing.
"""
from __future__ import annotations

from types import TracebackType
from typing import Any, Callable, Generic, Optional, Type, TypeVar

from ..core import large
from . import oob
from .pickling import loads

_T = TypeVar("_T")
_RELEASED = object()


class LeaseReleased(ValueError):
    """The object of a released lease was asked for."""


class Lease(Generic[_T]):
    """An object received without copying its buffers, valid until released."""

    __slots__ = ("_obj", "_release")

    def __init__(self, obj: Any, release: Optional[Callable[[], None]]) -> None:
        self._obj, self._release = obj, release

    @property
    def obj(self) -> _T:
        if self._obj is _RELEASED:
            raise LeaseReleased("this lease was released: its object's memory may be reused by the sender")
        return self._obj  # type: ignore[no-any-return]

    @property
    def released(self) -> bool:
        return self._obj is _RELEASED

    def release(self) -> None:
        """Hand the memory back to the sender; idempotent."""
        release, self._release, self._obj = self._release, None, _RELEASED
        if release is not None:
            release()

    def __enter__(self) -> _T:
        return self.obj

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_release", None) is not None:
            self.release()

    def __repr__(self) -> str:
        return f"<ringipc.Lease {'released' if self.released else type(self._obj).__name__}>"


def _decode_in_place(view: memoryview) -> Any:
    return oob.decode(view, copy=False) if oob.is_frame(view) else loads(view)


def lease_of(data: bytes) -> Lease[Any]:
    """The lease of a received message (a drop-in's body)."""
    if data and not data[0]:
        if large.is_reference(data):
            obj, release = large.lease(data, _decode_in_place)
            return Lease(obj, release)
        if oob.is_frame(data):
            return Lease(oob.decode(data), None)
    return Lease(loads(data), None)
