"""Messages larger than a ring's max_message_size: one side segment each.

With MPMC, fragments of different producers would interleave and different
consumers would pick up fragments of one object, so reassembly would need
per-object state shared by all consumers.  Instead the sender writes the whole
payload into a fresh shared-memory segment and puts a small *reference*
message into the ring; whichever consumer takes the reference owns the
segment, unlinks its name at once and reads it.  A consumer therefore never
sees part of an object, and ring order is kept because the reference takes
the object's place in the ring.

Reference layout: ``MAGIC (8 bytes) | payload length (u64 LE) | segment name``.
MAGIC starts with a NUL byte, which no pickle does (pickles start with
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
from typing import Any, Callable, Tuple, TypeVar, Union

from multiprocessing import util

from . import _segment
from ..errors import CorruptSegment

_T = TypeVar("_T")

MAGIC = b"\x00\xffRIPC-L"
_LENGTH = struct.Struct("<Q")
_HEAD = len(MAGIC) + _LENGTH.size


def needs_side_segment(data: Any, limit: int) -> bool:
    return len(data) > limit or data[:len(MAGIC)] == MAGIC


def export(owner: str, data: Any) -> bytes:
    """Copy `data` into a new side segment; returns the reference.  `data` is
    any bytes-like, or an object that writes itself (``size`` bytes, by
    ``write_into(view)``: an out-of-band frame of the drop-ins)."""
    frame = data if hasattr(data, "write_into") else None
    n = frame.size if frame is not None else memoryview(data).nbytes
    name = f"{owner}-L{os.getpid()}-{secrets.token_hex(6)}"
    mapping = _segment.create(name, max(n, 1))
    try:
        if frame is not None:
            with memoryview(mapping) as out:
                frame.write_into(out[:n])  # straight from the object's buffers
        else:
            with memoryview(data) as src, src.cast("B") as flat:
                mapping[:n] = flat
        mapping.close()
        # The receiver owns it from here on: this process must not unlink it at exit.
        _segment.disown(name)
    except BaseException:
        mapping.close()
        _segment.unlink(name)
        raise
    return MAGIC + _LENGTH.pack(n) + name.encode()


def is_reference(msg: Any) -> bool:
    return bool(msg[:len(MAGIC)] == MAGIC)


def _open(ref: Union[bytes, bytearray, memoryview]) -> Tuple[mmap.mmap, int]:
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


def discard(ref: Union[bytes, bytearray, memoryview]) -> None:
    """Remove the side segment of a reference that will never be sent."""
    if len(ref) > _HEAD:
        _segment.unlink(_segment.normalize_name(bytes(ref[_HEAD:]).decode("ascii", "replace")))


def load(ref: Union[bytes, bytearray, memoryview], decode: Callable[[memoryview], _T]) -> _T:
    """``decode(view)`` of the payload a reference names, straight from
    shared memory (the view is valid only during the call)."""
    mapping, n = _open(ref)
    try:
        with memoryview(mapping) as whole, whole[:n] as view:
            return decode(view)
    finally:
        mapping.close()


def load_bytes(ref: Union[bytes, bytearray, memoryview]) -> bytes:
    """The payload a reference names, as bytes."""
    mapping, n = _open(ref)
    try:
        return mapping[:n]
    finally:
        mapping.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(owner: str, only_dead: bool = True) -> int:
    """Unlink side segments of ring `owner`; with `only_dead`, only those whose
    sender has died.  Returns how many were removed."""
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
            continue
        _segment.unlink(entry)
        removed += 1
    return removed


def _cleanup(owner: str, pid: int) -> None:
    if os.getpid() == pid:
        # While the process exits nobody is left to take what it still owns;
        # before that, live senders' segments may yet be received.
        sweep(owner, only_dead=not util._exiting)  # type: ignore[attr-defined]  # private, no stub


def sweep_when_done(obj: object, owner: str) -> None:
    """Sweep `owner`'s side segments when `obj` is collected and at exit, in this
    process only; runs after feeder threads were joined (exit priority -10 < -5)."""
    util.Finalize(obj, _cleanup, (owner, os.getpid()), exitpriority=-10)
