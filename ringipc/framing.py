"""Message framing over any byte stream: the one place a frame is defined.

A frame is an 8-byte little-endian unsigned length followed by that many
payload bytes.  64-bit lengths mean a frame never truncates a large object
(a 32-bit prefix is what broke >2 GiB pickles elsewhere).  Pipes, FIFOs, UNIX
stream sockets and TCP all use this module; message queues and seqpacket
sockets keep their native boundaries and do not.

The reader keeps its position between calls, so a receive that times out in
the middle of a frame can be called again and resumes where it stopped,
instead of losing the stream's alignment.
"""
from __future__ import annotations

import os
import select
import struct
import time
from typing import Optional, Union

from .errors import FrameError

HEADER = struct.Struct("<Q")
HEADER_SIZE = HEADER.size
_unpack_header = HEADER.unpack

# Below this size one copy into a single buffer is cheaper than a second iovec.
_COALESCE_BELOW = 16 * 1024

_READ_EVENTS = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR


def wait_fd(fd: int, events: int, deadline: Optional[float], poller=None) -> bool:
    """Wait until ``fd`` reports one of ``events`` (or an error/hang-up), or until
    the monotonic ``deadline``.  Returns False on timeout.  ``poller`` is a
    ``select.poll`` already watching exactly ``fd`` for ``events``."""
    if poller is None:
        poller = select.poll()
        poller.register(fd, events)
    while True:
        if deadline is None:
            ms = None
        else:
            left = deadline - time.monotonic()
            # Round up: waking a hair early would report a timeout that has not happened.
            ms = max(0, int(left * 1000 + 0.999))
        if poller.poll(ms):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False


def wait_readable(fd: int, deadline: Optional[float]) -> bool:
    return wait_fd(fd, _READ_EVENTS, deadline)


def write_all(fd: int, views) -> int:
    """Write every buffer in ``views`` to an fd (blocking or not), gathering them in one
    system call where possible.  A vanished reader raises BrokenPipeError.

    If the writes stop part-way, the exception propagates with
    ``torn_write`` set, so a framing caller knows the stream may now hold a
    torn frame.  An exception from a signal handler always counts as torn:
    the handler can run just after a ``writev`` returned, before its count
    reaches Python, so "nothing was written" cannot be known."""
    bufs = [memoryview(v).cast("B") for v in views]
    bufs = [b for b in bufs if len(b)]
    written = 0
    try:
        while bufs:
            try:
                n = os.writev(fd, bufs)
            except BlockingIOError:  # a socket shared with a non-blocking reader
                wait_fd(fd, select.POLLOUT | select.POLLERR | select.POLLHUP, None)
                continue
            written += n
            while n:
                if n >= len(bufs[0]):
                    n -= len(bufs[0])
                    bufs.pop(0)
                else:
                    bufs[0] = bufs[0][n:]
                    n = 0
    except BaseException as exc:
        # An OSError comes from writev itself, so ``written`` is exact for it.
        if bufs and (written or not isinstance(exc, OSError)):
            exc.torn_write = True  # type: ignore[attr-defined]
        raise
    return written


def write_frame(fd: int, payload) -> None:
    """Write one frame.  Raises with ``torn_write`` set if it may be torn.

    ``payload`` is anything with the buffer protocol whose ``len`` is its size
    in bytes (bytes, bytearray or a byte memoryview)."""
    size = len(payload)
    if size >= _COALESCE_BELOW:
        write_all(fd, [HEADER.pack(size), payload])
        return
    # The common case costs one plain write and no list building: a frame
    # this small almost always goes out whole.
    data = HEADER.pack(size) + payload
    try:
        done = os.write(fd, data)
    except BlockingIOError:
        done = 0
    except OSError:
        raise  # from write itself: nothing was written
    except BaseException as exc:
        exc.torn_write = True  # type: ignore[attr-defined]
        raise
    if done != len(data):
        try:
            write_all(fd, [memoryview(data)[done:]])
        except BaseException as exc:
            if done:
                exc.torn_write = True  # type: ignore[attr-defined]
            raise


class FrameReader:
    """Reads frames from a non-blocking fd, resumably across timeouts and signals.

    The fd is non-blocking so that a read never sleeps: waiting happens in
    ``poll``, where an exception from a signal handler (Ctrl-C) consumes
    nothing.  The one unsafe moment is just after ``readv`` returned data and
    before its count is stored, where a handler can still run; ``_in_read``
    marks that window, and an exception escaping from it marks the stream as
    misaligned instead of silently losing bytes."""

    def __init__(self, fd: int):
        self.fd = fd
        os.set_blocking(fd, False)
        self._header = bytearray(HEADER_SIZE)
        self._header_got = 0
        self._body: Optional[bytearray] = None  # set once a body is buffered here
        self._body_got = 0
        self._broken: Optional[str] = None
        self._in_read = False
        self._header_iov = [memoryview(self._header)]
        self._poller = None

    def _reset(self) -> None:
        self._header_got = 0
        self._body = None
        self._body_got = 0

    def _read_some(self, view: memoryview, deadline: Optional[float]) -> int:
        """readv into ``view``; on return ``_in_read`` is set until the caller has stored the count."""
        while True:
            self._in_read = True
            try:
                return os.readv(self.fd, [view])
            except BlockingIOError:
                self._in_read = False
            except OSError:
                self._in_read = False  # raised by readv itself: nothing was consumed
                raise
            if self._poller is None:
                # Kept: a receiver that keeps up with its peer waits once per message.
                self._poller = select.poll()
                self._poller.register(self.fd, _READ_EVENTS)
            if not wait_fd(self.fd, _READ_EVENTS, deadline, self._poller):
                raise TimeoutError("timed out waiting for the peer")

    def _guarded(self, fn, *args):
        if self._broken:
            raise FrameError(self._broken)
        try:
            return fn(*args)
        except BaseException:
            if self._in_read:
                self._in_read = False
                self._broken = "a receive was interrupted while copying bytes; the stream position is lost"
            raise

    def _read_length(self, limit: Optional[int], deadline: Optional[float]) -> int:
        view = memoryview(self._header)
        while self._header_got < HEADER_SIZE:
            n = self._read_some(view[self._header_got :], deadline)
            self._header_got += n
            self._in_read = False
            if n == 0:
                if self._header_got == 0:
                    raise EOFError("the peer closed the channel")
                raise ConnectionResetError(
                    f"the peer went away inside a frame header ({self._header_got} of {HEADER_SIZE} bytes)"
                )
        (length,) = HEADER.unpack(self._header)
        if limit is not None and length > limit:
            # Refused before allocating anything; the stream cannot be re-aligned
            # without trusting the length, so the channel is unusable from here on.
            self._broken = f"a frame announced {length} bytes, over the {limit}-byte limit"
            raise FrameError(self._broken)
        return length

    def _fill(self, view: memoryview, length: int, deadline: Optional[float]) -> None:
        while self._body_got < length:
            n = self._read_some(view[self._body_got : length], deadline)
            self._body_got += n
            self._in_read = False
            if n == 0:
                raise ConnectionResetError(
                    f"the peer went away inside a frame ({self._body_got} of {length} bytes received)"
                )

    def _read(self, limit: Optional[int], deadline: Optional[float]) -> bytearray:
        length = self._read_length(limit, deadline)
        if self._body is None:
            self._body = bytearray(length)
            self._body_got = 0
        self._fill(memoryview(self._body), length, deadline)
        body = self._body
        self._reset()
        return body

    def _read_into(self, view: memoryview, limit: Optional[int], deadline: Optional[float]) -> Union[int, bytes]:
        length = self._read_length(limit, deadline)
        if self._body is not None or length > len(view):
            body = self._read(limit, deadline)
            if length > len(view):
                return bytes(body)
            view[:length] = body
            return length
        try:
            self._fill(view, length, deadline)
        except BaseException:
            # Keep what arrived so a later call resumes; the caller's buffer is not ours to hold.
            self._body = bytearray(length)
            self._body[: self._body_got] = view[: self._body_got]
            raise
        self._reset()
        return length

    def _fast_header(self, limit: Optional[int]) -> int:
        """Try to read a whole header without waiting: its length, or -1 when
        the careful path must take over (nothing ready, a short read, EOF).
        Called only with no frame in progress, inside ``read``'s guard."""
        self._in_read = True
        try:
            got = os.readv(self.fd, self._header_iov)
        except BlockingIOError:
            self._in_read = False
            return -1
        except OSError:
            self._in_read = False  # raised by readv itself: nothing was consumed
            raise
        self._header_got = got
        self._in_read = False
        if got != HEADER_SIZE:
            return -1
        (length,) = HEADER.unpack(self._header)
        if limit is not None and length > limit:
            self._broken = f"a frame announced {length} bytes, over the {limit}-byte limit"
            raise FrameError(self._broken)
        return length

    def read(self, limit: Optional[int], deadline: Optional[float]) -> "bytes | bytearray":
        """One whole frame's payload.

        When the peer is ahead of us (the busy case) a frame is two plain
        reads; anything unusual (no data yet, short reads, a frame already in
        progress) goes through the resumable path."""
        if self._broken is not None or self._header_got or self._body is not None:
            return self._guarded(self._read, limit, deadline)
        fd = self.fd
        try:
            # _fast_header, written out: a call is a visible part of a small message's cost.
            self._in_read = True
            try:
                got = os.readv(fd, self._header_iov)
            except BlockingIOError:
                self._in_read = False
                return self._read(limit, deadline)
            except OSError:
                self._in_read = False
                raise
            self._header_got = got
            self._in_read = False
            if got != HEADER_SIZE:
                return self._read(limit, deadline)
            length = _unpack_header(self._header)[0]
            if limit is not None and length > limit:
                self._broken = f"a frame announced {length} bytes, over the {limit}-byte limit"
                raise FrameError(self._broken)
            if length < _COALESCE_BELOW:
                if not length:
                    self._header_got = 0
                    return b""
                self._in_read = True
                try:
                    data = os.read(fd, length)
                except BlockingIOError:
                    self._in_read = False
                    return self._read(limit, deadline)
                except OSError:
                    self._in_read = False
                    raise
                if len(data) == length:
                    self._header_got = 0
                    self._in_read = False
                    return data
                body = bytearray(length)
                body[: len(data)] = data
                self._body_got = len(data)
                self._body = body
                self._in_read = False
            return self._read(limit, deadline)
        except BaseException:
            if self._in_read:
                self._in_read = False
                self._broken = "a receive was interrupted while copying bytes; the stream position is lost"
            raise

    def read_into(self, view: memoryview, limit: Optional[int], deadline: Optional[float]) -> Union[int, bytes]:
        """Receive straight into ``view`` when the frame fits; otherwise return it as bytes."""
        if self._broken is not None or self._header_got or self._body is not None:
            return self._guarded(self._read_into, view, limit, deadline)
        try:
            length = self._fast_header(limit)
            if 0 <= length <= len(view):
                self._in_read = True
                try:
                    got = os.readv(self.fd, [view[:length]]) if length else 0
                except BlockingIOError:
                    got = 0
                except OSError:
                    self._in_read = False
                    raise
                if got == length:
                    self._header_got = 0
                    self._in_read = False
                    return length
                if got:
                    # Keep what arrived so a later call resumes; the caller's buffer is not ours to hold.
                    body = bytearray(length)
                    body[:got] = view[:got]
                    self._body_got = got
                    self._body = body
                self._in_read = False
            return self._read_into(view, limit, deadline)
        except BaseException:
            if self._in_read:
                self._in_read = False
                self._broken = "a receive was interrupted while copying bytes; the stream position is lost"
            raise
