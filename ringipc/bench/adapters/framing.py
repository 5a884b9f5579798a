"""Length-prefixed messages over a byte stream (pipes, stream sockets, ringipc's stream mode).

Shared by every stream adapter so they differ only in the syscall underneath.
"""
import struct
from typing import Any, Callable, List, Tuple

LENGTH = struct.Struct("<I")
#: above this a message is read straight into one reused buffer instead of copied out
LARGE = 64 << 10


class FrameReader:
    """Reads frames through ``readinto(memoryview) -> int`` (0 means EOF).

    Small messages are returned as fresh ``bytes`` cut from a 64 KiB read
    buffer (few syscalls per message); a large one is assembled in a reused
    bytearray that stays valid until the next call.
    """

    def __init__(self, readinto: Callable[..., Any], chunk: int = 64 << 10) -> None:
        self._readinto = readinto
        self._buf = bytearray(chunk)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._large = bytearray()

    def _fill(self, need: int) -> None:
        """Make at least ``need`` bytes available at ``_start``."""
        if self._start + need > len(self._buf):
            avail = self._end - self._start
            self._view[:avail] = self._view[self._start : self._end]
            self._start, self._end = 0, avail
        while self._end - self._start < need:
            got = self._readinto(self._view[self._end :])
            if not got:
                raise EOFError("stream closed in the middle of a frame" if self._end > self._start else "stream closed")
            self._end += got

    def recv(self) -> Any:
        self._fill(LENGTH.size)
        (length,) = LENGTH.unpack_from(self._buf, self._start)
        self._start += LENGTH.size
        if length < LARGE:
            self._fill(length)
            msg = bytes(self._view[self._start : self._start + length])
            self._start += length
            return msg
        if len(self._large) != length:
            self._large = bytearray(length)
        out = memoryview(self._large)
        have = min(length, self._end - self._start)
        out[:have] = self._view[self._start : self._start + have]
        self._start += have
        while have < length:
            got = self._readinto(out[have:])
            if not got:
                raise EOFError("stream closed in the middle of a frame")
            have += got
        return self._large


#: below this a frame is built by concatenation and sent with one plain write:
#: cheaper than building an iovec list, as a careful hand-written sender does
SMALL = 16 << 10


def frame_sender(write: Callable[..., Any], writev: Callable[..., Any]) -> Callable[[Any], None]:
    """``send(msg)`` writing one frame: ``write(bytes) -> int`` for small
    messages, ``writev(list) -> int`` (no copy) for large ones."""

    def send(msg: Any) -> None:
        if len(msg) < SMALL:
            data = LENGTH.pack(len(msg)) + msg
            sent = write(data)
            if sent != len(data):
                write_all(writev, [memoryview(data)[sent:]])
        else:
            write_all(writev, frames((msg,)))

    return send


def frames(msgs: Any) -> List[Any]:
    """The iovec list for one vectored write of ``msgs``: length, data, length, data ..."""
    out = []
    for msg in msgs:
        out.append(LENGTH.pack(len(msg)))
        out.append(msg)
    return out


def write_all(writev: Callable[..., Any], parts: Any) -> None:
    """Vectored write of ``parts``, resuming after a short write."""
    total = sum(len(p) for p in parts)
    sent = writev(parts)
    while sent < total:
        # Rare (a big message against a full buffer): drop what went out and retry.
        rest = []
        skip = sent
        for p in parts:
            if skip >= len(p):
                skip -= len(p)
                continue
            rest.append(memoryview(p)[skip:])
            skip = 0
        parts = rest
        total -= sent
        sent = writev(parts)


def file_writev(stream: Any, parts: Any) -> int:
    """A vectored write made of ``stream.write`` calls, for file-like streams without writev."""
    total = 0
    for part in parts:
        wrote = stream.write(part) or 0
        total += wrote
        if wrote < len(part):
            break  # short write: write_all resumes from here
    return total


class FdEnd:
    """A raw file descriptor that survives pickling into a spawned child.

    ``multiprocessing.reduction.DupFd`` is what multiprocessing itself uses to
    hand a connection's descriptor to a child it is starting.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        from multiprocessing.reduction import DupFd

        return _rebuild_fd, (DupFd(self.fd),)


def _rebuild_fd(dup: Any) -> "FdEnd":
    return FdEnd(dup.detach())
