"""Objects with large buffers as one message: pickle protocol 5, out of band.

``encode(obj)`` pickles with protocol 5 and a ``buffer_callback``: the
contiguous buffers of the object that are at least OOB_MIN_BUFFER bytes
(bytearray, PickleBuffer, NumPy arrays and anything else that hands out
``PickleBuffer``s) are not copied into the pickle but written once, straight
from the object's memory, into the message - a ring claim or a side segment
(``Frame.write_into``).  ``decode(view)`` rebuilds the object with one copy
of each buffer out of shared memory (``copy=False``: none; the object then
looks into the message, which must stay claimed while it is used).  A large
``bytes`` object (which pickle always copies in-band) travels the same way,
as a raw buffer.

Frame layout (little-endian), every section 64-byte aligned so that arrays
rebuilt in place are aligned as their creator's were::

    0   MAGIC (8 bytes: NUL first, so never a pickle; never large.py's MAGIC)
    8   u32 buffer count       12  u32 flags (RAW_BYTES: the object is bytes;
                                   ARRAY: a plain NumPy array, its pickle is
                                   (dtype.str, shape, order))
    16  u64 pickle length      24  u64 length of each buffer ...
    pickle, then each buffer

Everything read from a frame is validated before use: the section lengths
must add up to exactly the message's length.
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import threading
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple, Union, final

from ..core._bulk import bytearray_of, bytes_of, copy_into
from ..core._recycle import MIN_BLOCK, block_of
from ..core._recycle import forget_after_fork as forget_parked
from ..errors import CorruptSegment
from .pickling import _PLAIN, PROTOCOL, _dispatch, _plain_dumps, dumps_bytes

if TYPE_CHECKING:
    from ..core._ring import Ring

_Bytes = Union[bytes, bytearray, memoryview]

MAGIC = b"\x00\xfeRIPC5\x00"
OOB_MIN_BUFFER = 64 << 10   # smaller buffers stay in the pickle: below this a second section costs more than it saves
MAX_BUFFERS = 1 << 16
RAW_BYTES = 1
ARRAY = 2
_ALIGN = 64
_FIXED = struct.Struct("<8sIIQ")
# Zeros for Frame.pieces: the padding before a section is under a page plus an alignment.
_ZEROS = memoryview(bytes(4096 + 64))
_LENGTH = struct.Struct("<Q")


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) & ~(_ALIGN - 1)


# Where in its page a large buffer starts, counted from the frame's start
# (page-aligned in a slab or side segment).  A memcpy whose destination lies
# a little ahead of its source within a 4 KiB page (48 or 240 bytes, say)
# runs at a third of its speed on some CPUs (4K aliasing: a load seems to
# hit a store still in flight); measured 74 ms against 23 ms for 256 MiB
# here.  Users' large buffers mostly start at 0 or 16 in a page (mmap, or
# malloc's header), and so do receive buffers: mid-page keeps both copies,
# into the slab and out of it, about 2 KiB away from that in either direction.
_PAGE = 4096
_IN_PAGE = 2048


def _placed(pos: int, length: int) -> int:
    """Where a buffer of `length` bytes goes at or after `pos`."""
    if length < OOB_MIN_BUFFER:
        return pos
    return pos + (_IN_PAGE - pos) % _PAGE


@final  # lets type checkers narrow on `type(data) is Frame`, the test the queues make
class Frame:
    """An encoded object: its pickle and out-of-band buffers, and where each goes."""

    __slots__ = ("pickle", "buffers", "flags", "offsets", "size")

    def __init__(self, pickled: bytes, buffers: Sequence[memoryview], flags: int = 0):
        self.pickle, self.buffers, self.flags = pickled, list(buffers), flags
        head = _aligned(_FIXED.size + _LENGTH.size * len(self.buffers))
        self.offsets = [head]
        pos = _aligned(head + len(pickled))
        for buf in self.buffers:
            pos = _placed(pos, buf.nbytes)
            self.offsets.append(pos)
            pos = _aligned(pos + buf.nbytes)
        self.size = pos

    def _write_header(self, out: memoryview) -> None:
        _FIXED.pack_into(out, 0, MAGIC, len(self.buffers), self.flags, len(self.pickle))
        for i, buf in enumerate(self.buffers):
            _LENGTH.pack_into(out, _FIXED.size + _LENGTH.size * i, buf.nbytes)

    def write_into(self, out: memoryview) -> None:
        """Write the whole frame into `out` (exactly `size` bytes, writable)."""
        self._write_header(out)
        out[self.offsets[0]:self.offsets[0] + len(self.pickle)] = self.pickle
        for start, buf in zip(self.offsets[1:], self.buffers):
            copy_into(out[start:start + buf.nbytes], buf)  # the one copy in (large ones without the GIL)

    def pieces(self) -> List[memoryview]:
        """The frame as consecutive buffers, the object's own buffers among
        them uncopied: for a transport that gathers (writev, sendmsg), so that
        a frame goes out without being joined first.  Header, pickle and the
        zero padding between sections are small buffers of their own."""
        head = bytearray(self.offsets[0])
        self._write_header(memoryview(head))
        out = [memoryview(head)]
        pos = self.offsets[0]
        if self.pickle:
            out.append(memoryview(self.pickle))
            pos += len(self.pickle)
        for buf, start in zip(self.buffers, self.offsets[1:]):
            if start > pos:
                out.append(_ZEROS[:start - pos])
            out.append(buf)
            pos = start + buf.nbytes
        if self.size > pos:
            out.append(_ZEROS[:self.size - pos])
        return out

    def tobytes(self) -> bytes:
        out = bytearray(self.size)
        self.write_into(memoryview(out))
        return bytes(out)


def _fresh_pickler(collected: List[memoryview], min_buffer: int) -> Tuple[pickle.Pickler, io.BytesIO]:
    def out_of_band(pb: pickle.PickleBuffer) -> bool:
        try:
            raw = pb.raw()  # contiguous (C or Fortran order) as bytes
        except BufferError:
            return True  # not contiguous: pickled in-band
        if raw.nbytes < min_buffer or len(collected) >= MAX_BUFFERS:
            return True
        collected.append(raw)
        return False

    sink = io.BytesIO()
    pickler = pickle.Pickler(sink, 5, buffer_callback=out_of_band)
    pickler.dispatch_table = _dispatch  # multiprocessing's reducers (connections, sockets, ...)
    return pickler, sink


# One reusable pickler (building one costs more than pickling a small object),
# taken without blocking: another thread, or a __reduce__ re-entering on this
# one, builds its own.
_collected: List[memoryview] = []
_pickler, _sink = _fresh_pickler(_collected, OOB_MIN_BUFFER)
_lock = threading.Lock()


def encode(obj: Any, min_buffer: int = OOB_MIN_BUFFER) -> Union[bytes, Frame]:
    """`obj`'s pickle as bytes when it has no buffer worth sending out of band;
    otherwise a Frame (which refers to the object's memory until written)."""
    kind = type(obj)
    if kind is bytes:
        return Frame(b"", [memoryview(obj)], RAW_BYTES) if len(obj) >= min_buffer else dumps_bytes(obj)
    if kind in _PLAIN:
        return _plain_dumps(obj, PROTOCOL)
    if kind.__name__ == "ndarray" and kind.__module__ == "numpy":  # never imports NumPy itself
        frame = _array_frame(obj, min_buffer)
        if frame is not None:
            return frame
    if min_buffer != OOB_MIN_BUFFER or not _lock.acquire(False):
        collected: List[memoryview] = []
        pickler, sink = _fresh_pickler(collected, min_buffer)
        pickler.dump(obj)
        return Frame(sink.getvalue(), collected) if collected else sink.getvalue()
    try:
        _pickler.dump(obj)
        data = _sink.getvalue()
        return Frame(data, list(_collected)) if _collected else data
    finally:
        _pickler.clear_memo()
        _sink.seek(0)
        _sink.truncate()
        _collected.clear()
        _lock.release()


def _array_frame(arr: Any, min_buffer: int) -> Optional[Frame]:
    """A plain contiguous array as (dtype, shape, order) and its memory: numpy's
    own protocol-5 reduce costs ~15 us to pickle and ~20 us to rebuild, a
    sixth of a 1 MiB object's whole trip.  Anything unusual (object or
    structured dtypes, non-contiguous) takes the general path."""
    dtype = arr.dtype
    if arr.nbytes < min_buffer or dtype.kind not in "biufcSU" or dtype.fields is not None \
            or dtype.subdtype is not None:
        return None  # datetimes, objects, records, ...: numpy's own reduce
    if arr.flags.c_contiguous:
        order = "C"
    elif arr.flags.f_contiguous:
        order = "F"
    else:
        return None
    try:
        raw = pickle.PickleBuffer(arr).raw()
    except (BufferError, ValueError):
        return None
    return Frame(pickle.dumps((dtype.str, arr.shape, order), PROTOCOL), [raw], ARRAY)


def _rebuild_array(head: memoryview, buf: Any) -> Any:
    import numpy  # the sender's object was an array: NumPy is there to rebuild it
    try:
        dtype, shape, order = pickle.loads(head)
        return numpy.ndarray(shape, numpy.dtype(dtype), buffer=buf, order=order)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise CorruptSegment(f"out-of-band array frame is damaged: {exc}") from exc


def _array_memory(part: memoryview) -> Union[bytearray, Any]:
    # Large arrays get recycled memory (core/_recycle.pyx): fresh memory of
    # hundreds of MiB page-faults at a fraction of the copy's speed.
    return block_of(part) if part.nbytes >= MIN_BLOCK else bytearray_of(part)


def _after_fork() -> None:
    # A fork taken while another thread held the lock would leave it held for ever.
    global _pickler, _sink, _lock
    _collected.clear()
    _pickler, _sink = _fresh_pickler(_collected, OOB_MIN_BUFFER)
    _lock = threading.Lock()
    forget_parked()  # the parent's parked receive buffers: copy-on-write copies here


os.register_at_fork(after_in_child=_after_fork)


def send(ring: Ring, frame: Frame, block: bool = True, timeout: Optional[float] = None) -> None:
    """Write `frame` into `ring` as one message: one claim, one copy of each buffer."""
    with ring.send_view(frame.size, block, timeout) as view, memoryview(view) as out:
        frame.write_into(out)


def is_frame(message: _Bytes) -> bool:
    return len(message) >= len(MAGIC) and message[:len(MAGIC)] == MAGIC


def decode_payload(message: _Bytes) -> Any:
    """The object of a drop-in's message body: an out-of-band frame or a pickle."""
    return decode(message) if is_frame(message) else pickle.loads(message)


def decode_owned(message: memoryview) -> Any:
    """Rebuild the object of a frame received into a writable buffer nothing
    else uses (a channel's receive buffer): its buffers are views of it, so
    arrays are writable and nothing is copied a second time.  A read-only
    buffer, or a frame of a bytes object (bytes cannot share memory), is
    decoded with its one copy."""
    if message.readonly or (message.nbytes >= _FIXED.size and _FIXED.unpack_from(message, 0)[2] & RAW_BYTES):
        return decode(message)
    return decode(message, copy=False)


def decode(message: _Bytes, copy: bool = True) -> Any:
    """Rebuild the object of a frame (a buffer holding exactly one frame).
    With copy=False its buffers are views of `message`."""
    view = memoryview(message).cast("B")
    total = view.nbytes
    if total < _FIXED.size:
        raise CorruptSegment("truncated out-of-band frame")
    magic, count, flags, pickle_length = _FIXED.unpack_from(view, 0)
    if magic != MAGIC or count > MAX_BUFFERS or flags & ~(RAW_BYTES | ARRAY) or (flags and count != 1) \
            or flags == RAW_BYTES | ARRAY:
        raise CorruptSegment("malformed out-of-band frame header")
    head = _aligned(_FIXED.size + _LENGTH.size * count)
    if head > total:
        raise CorruptSegment("out-of-band frame header runs past the message")
    lengths = [_LENGTH.unpack_from(view, _FIXED.size + _LENGTH.size * i)[0] for i in range(count)]
    pos = _aligned(head + pickle_length)
    starts = []
    for length in lengths:
        pos = _placed(pos, length)
        starts.append(pos)
        pos = _aligned(pos + length)
    if pos != total or pickle_length > total:  # lengths are u64: a wrapped sum cannot match either
        raise CorruptSegment(f"out-of-band frame sections ({pos} bytes) do not match the message ({total})")
    parts = [view[s:s + n] for s, n in zip(starts, lengths)]
    if flags & RAW_BYTES:
        return bytes_of(parts[0]) if copy else parts[0]
    if flags & ARRAY:
        return _rebuild_array(view[head:head + pickle_length], _array_memory(parts[0]) if copy else parts[0])
    # The one copy out (large ones without the GIL, no zero-fill first).
    buffers = [bytearray_of(part) for part in parts] if copy else parts
    try:
        return pickle.loads(view[head:head + pickle_length], buffers=buffers)
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise CorruptSegment(f"out-of-band frame's pickle is damaged: {exc}") from exc
