"""Pickling for the drop-ins: multiprocessing's reducers at plain-pickle speed.

multiprocessing pickles queue items with ``ForkingPickler``, whose extra
reducers let connections, sockets and bound methods travel between processes.
``ForkingPickler.dumps`` builds a new pickler and copies the dispatch table on
every call, several times the cost of pickling a small object.  Here:

* objects of builtin scalar types (and bytes) cannot contain anything a
  reducer applies to, so they go straight to ``pickle.dumps``;
* everything else uses one reusable pickler whose dispatch table is a live
  view of copyreg's table plus ForkingPickler's extra reducers (reducers
  registered later still apply); a thread that finds it busy builds its own.
"""
from __future__ import annotations

import collections
import copyreg
import io
import os
import pickle
import threading
from typing import Any, Callable, Iterable, List

from multiprocessing.reduction import ForkingPickler

PROTOCOL = pickle.HIGHEST_PROTOCOL
loads: Callable[..., Any] = pickle.loads

_PLAIN = frozenset({bytes, str, int, float, bool, type(None), complex})
# Only consulted for types the C pickler has no fast path for.
_dispatch: "collections.ChainMap[type, Callable[..., Any]]" = collections.ChainMap(
    ForkingPickler._extra_reducers, copyreg.dispatch_table)  # type: ignore[attr-defined]  # private, untyped
_buf = io.BytesIO()
_pickler = pickle.Pickler(_buf, PROTOCOL)
_pickler.dispatch_table = _dispatch
_lock = threading.Lock()
_plain_dumps = pickle.dumps
__all__ = ["PROTOCOL", "dumps", "loads"]


# A bytes object pickles to PROTO 5, (SHORT_)BINBYTES, the data, STOP; building
# that by hand skips creating a Pickler per call (about half the cost for
# small messages).  pickle.loads reads it like any other pickle.
_SHORT_BINBYTES = b"\x80\x05C"
_BINBYTES = b"\x80\x05B"
_LEN1: List[bytes] = [bytes([i]) for i in range(256)]
# Any items: put() joins the object it checked is bytes, which mypy cannot narrow from type(obj).
_join: Callable[[Iterable[Any]], bytes] = b"".join


def dumps_bytes(data: Any) -> bytes:
    """The pickle of a bytes object `data` (exactly ``type(data) is bytes``)."""
    n = len(data)
    if n < 256:
        return _join((_SHORT_BINBYTES, _LEN1[n], data, b"."))
    if n < 1 << 32:
        return _join((_BINBYTES, n.to_bytes(4, "little"), data, b"."))
    return _plain_dumps(data, PROTOCOL)


def _fresh(obj: Any) -> bytes:
    out = io.BytesIO()
    pickler = pickle.Pickler(out, PROTOCOL)
    pickler.dispatch_table = _dispatch
    pickler.dump(obj)
    return out.getvalue()


def dumps(obj: Any) -> bytes:
    """The pickle of `obj` (highest protocol, ForkingPickler's reducers) as bytes."""
    if type(obj) is bytes:
        return dumps_bytes(obj)
    if type(obj) in _PLAIN:
        return _plain_dumps(obj, PROTOCOL)
    # Non-blocking: another thread, or a __reduce__ re-entering on this one.
    if not _lock.acquire(False):
        return _fresh(obj)
    try:
        _pickler.dump(obj)
        return _buf.getvalue()
    finally:
        _pickler.clear_memo()
        _buf.seek(0)
        _buf.truncate()
        _lock.release()


def _after_fork() -> None:
    # A fork taken while another thread held the lock would leave it held forever.
    global _lock, _buf, _pickler
    _lock = threading.Lock()
    _buf = io.BytesIO()
    _pickler = pickle.Pickler(_buf, PROTOCOL)
    _pickler.dispatch_table = _dispatch


os.register_at_fork(after_in_child=_after_fork)
