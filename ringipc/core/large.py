"""Messages larger than a ring's max_message_size, and out-of-band frames:
side segments, normally reused slabs of a bounded pool (slabs.py).

With MPMC, fragments of different producers would interleave and different
consumers would pick up fragments of one object, so reassembly would need
per-object state shared by all consumers.  Instead the sender writes the whole
payload into a fresh shared-memory segment and puts a small *reference*
message into the ring; whichever consumer takes the reference owns the
segment, unlinks its name at once and reads it.  A consumer therefore never
sees part of an object, and ring order is kept because the reference takes
the object's place in the ring.

In the steady state the segment is a slab of the sender's pool, which the
receiver hands back instead of unlinking (slabs.py); a one-off segment is
made only when the pool has no slab free in time.

Reference layouts: ``MAGIC (8 bytes) | payload length (u64 LE) | segment
name`` for a one-off segment, ``SLAB_MAGIC | payload length | generation
(u64 LE) | slab name`` for a slab.
Both magics start with a NUL byte, which no pickle does (pickles start with
0x80), and raw byte messages that happen to start with MAGIC are themselves
sent through a side segment, so a reference is never ambiguous.

Side segments are named ``<ring name>-L<sender pid>-<hex>`` so that the ring's
creator can sweep those left by a sender that died before sending the
reference, or a receiver that died before unlinking it (``sweep``).
"""
import mmap
import os
import secrets
import struct
from typing import Any, Callable, Optional, Protocol, Tuple, TypeVar, Union

from multiprocessing import util

from . import _segment, slabs
from ._bulk import bytes_of, copy_into
from ..errors import CorruptSegment

_T = TypeVar("_T")
_Bytes = Union[bytes, bytearray, memoryview]


class _SelfWriting(Protocol):
    """An object that writes its own `size` bytes (the drop-ins' out-of-band frame)."""

    size: int

    def write_into(self, out: memoryview) -> None: ...

MAGIC = b"\x00\xffRIPC-L"
SLAB_MAGIC = b"\x00\xffRIPC-S"
_LENGTH = struct.Struct("<Q")
_HEAD = len(MAGIC) + _LENGTH.size
_SLAB = struct.Struct("<QQ")
_SLAB_HEAD = len(SLAB_MAGIC) + _SLAB.size


def needs_side_segment(data: _Bytes, limit: int) -> bool:
    return len(data) > limit or data[:len(MAGIC)] in (MAGIC, SLAB_MAGIC)


def _write(out: memoryview, frame: Optional[_SelfWriting], data: Any) -> None:
    if frame is not None:
        frame.write_into(out)  # straight from the object's buffers
    else:
        with memoryview(data) as src, src.cast("B") as flat:
            copy_into(out, flat)


def export(owner: str, data: Any, holder: object, block: bool = True, timeout: Optional[float] = None) -> bytes:
    """Copy `data` into a slab of this process's pool for ring `owner` (or,
    if none is free within GIVE_UP seconds or `timeout`, a new one-off
    segment); returns the reference.  `data` is any bytes-like, or an object
    that writes itself (``size`` bytes, by ``write_into(view)``: an
    out-of-band frame of the drop-ins).  The pool lives as long as `holder`,
    the sending end."""
    frame: Optional[_SelfWriting] = data if hasattr(data, "write_into") else None
    n = frame.size if frame is not None else memoryview(data).nbytes
    pool = slabs.pool(owner, holder)
    slab = pool.take(n, block, timeout)
    if slab is None:
        return _export_one_off(owner, frame, data, n)
    try:
        with memoryview(slab.mapping) as whole, whole[slabs.HEADER:slabs.HEADER + n] as out:
            _write(out, frame, data)
    except BaseException:
        pool.abandon(slab)
        raise
    gen = pool.commit(slab)
    return SLAB_MAGIC + _SLAB.pack(n, gen) + slab.name.encode()


def _export_one_off(owner: str, frame: Optional[_SelfWriting], data: Any, n: int) -> bytes:
    name = f"{owner}-L{os.getpid()}-{secrets.token_hex(6)}"
    mapping = _segment.create(name, max(n, 1))
    try:
        with memoryview(mapping) as whole, whole[:n] as out:
            _write(out, frame, data)
        mapping.close()
        # The receiver owns it from here on: this process must not unlink it at exit.
        _segment.disown(name)
    except BaseException:
        mapping.close()
        _segment.unlink(name)
        raise
    return MAGIC + _LENGTH.pack(n) + name.encode()


def sender_closed(owner: str, holder: object) -> None:
    """The sending end `holder` of ring `owner` is closed: its pool may go
    (slabs still in flight stay until read)."""
    slabs.let_go(owner, holder)


def is_reference(msg: _Bytes) -> bool:
    return msg[:len(MAGIC)] in (MAGIC, SLAB_MAGIC)


def _slab_ref(ref: _Bytes) -> Tuple[str, int, int]:
    if len(ref) <= _SLAB_HEAD:
        raise CorruptSegment("truncated large-object reference")
    n, gen = _SLAB.unpack_from(ref, len(SLAB_MAGIC))
    return _segment.normalize_name(bytes(ref[_SLAB_HEAD:]).decode("ascii", "replace")), gen, n


def _open(ref: _Bytes) -> Tuple[mmap.mmap, int]:
    if len(ref) <= _HEAD:
        raise CorruptSegment("truncated large-object reference")
    (n,) = _LENGTH.unpack_from(ref, len(MAGIC))
    name = _segment.normalize_name(bytes(ref[_HEAD:]).decode("ascii", "replace"))
    mapping, size = _segment.open_existing(name)
    # Unlink before reading: a receiver that dies while copying leaks nothing.
    _segment.unlink(name)
    if mapping is None or size < n:
        if mapping is not None:
            mapping.close()
        raise CorruptSegment(f"side segment {name!r} is shorter ({size} bytes) than its reference says ({n})")
    return mapping, n


def discard(ref: _Bytes) -> None:
    """Free the side segment of a reference that will never be sent."""
    if ref[:len(SLAB_MAGIC)] == SLAB_MAGIC:
        name, gen, _ = _slab_ref(ref)
        slabs.take_back(name, gen)
    elif len(ref) > _HEAD:
        _segment.unlink(_segment.normalize_name(bytes(ref[_HEAD:]).decode("ascii", "replace")))


def load(ref: _Bytes, decode: Callable[[memoryview], _T]) -> _T:
    """``decode(view)`` of the payload a reference names, straight from
    shared memory (the view is valid only during the call)."""
    if ref[:len(SLAB_MAGIC)] == SLAB_MAGIC:
        name, gen, n = _slab_ref(ref)
        view = slabs.reader().open(name, gen, n)
        try:
            return decode(view)
        finally:
            # Handed back while the view still pins the mapping (no eviction can unmap it).
            orphan = slabs.reader().done(name, gen, view.obj)
            view.release()
            slabs.close_later(orphan)
    mapping, n = _open(ref)
    try:
        with memoryview(mapping) as whole, whole[:n] as view:
            return decode(view)
    finally:
        mapping.close()


def load_bytes(ref: _Bytes) -> bytes:
    """The payload a reference names, as bytes."""
    return load(ref, bytes_of)


def lease(ref: _Bytes, decode: Callable[[memoryview], _T]) -> Tuple[_T, Callable[[], None]]:
    """``(decode(view), release)``: the view of the payload stays valid, and
    its slab taken (its sender cannot reuse it), until ``release()``."""
    if ref[:len(SLAB_MAGIC)] != SLAB_MAGIC:
        return load(ref, decode), _nothing
    name, gen, n = _slab_ref(ref)
    view = slabs.reader().open(name, gen, n)
    try:
        obj = decode(view)
    except BaseException:
        orphan = slabs.reader().done(name, gen, view.obj)
        view.release()
        slabs.close_later(orphan)
        raise

    def release() -> None:
        # The object may still look into the view, so it is not released
        # here; it pins the mapping until the slab is handed back.
        slabs.reader().done(name, gen, view.obj)
    return obj, release


def _nothing() -> None:
    pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(owner: str, only_dead: bool = True, mine: bool = False) -> int:
    """Unlink side segments of ring `owner`; with `only_dead`, only those whose
    sender has died (and with `mine`, this process's).  Returns how many were removed."""
    prefix = f"{owner}-L"
    removed = 0
    try:
        names = os.listdir(_segment.SHM_DIR)
    except OSError:
        return 0
    for entry in names:
        if not entry.startswith(prefix):
            continue
        pid_text = entry[len(prefix):].split("-", 1)[0]
        if only_dead and pid_text.isdigit() and _pid_alive(int(pid_text)):
            if not (mine and int(pid_text) == os.getpid()):
                continue
        _segment.unlink(entry)
        removed += 1
    return removed


def _cleanup(owner: str, pid: int) -> None:
    # This process's slabs go with the queue (slabs still in flight become
    # orphans, removed by their readers); any process's at its exit.
    slabs.release_pool(owner)
    if os.getpid() == pid:
        # While the process exits, what it sent itself and nobody took will
        # never be taken; other live senders' segments may yet be received
        # (by the children the ring outlives us in) and are theirs to remove.
        # (util._exiting, not is_exiting(): that is also true while modules are torn down;
        # typeshed does not declare the private flag.)
        sweep(owner, only_dead=True, mine=util._exiting)  # type: ignore[attr-defined]


def sweep_when_done(obj: object, owner: str) -> None:
    """Sweep `owner`'s side segments when `obj` is collected and at exit, in this
    process only; runs after feeder threads were joined (exit priority -10 < -5)."""
    util.Finalize(obj, _cleanup, (owner, os.getpid()), exitpriority=-10)
