"""Reading frames (defined in framing.py) from a non-blocking descriptor, with read-ahead.

Why read ahead: a frame read exactly costs two system calls, one for the
header and one for the body.  A sender that is ahead of us leaves many
frames in the kernel, and one read of up to 64 KiB brings them all in, so a
busy receiver of small messages makes almost no system calls.

What that costs: frames in our buffer are invisible to anyone polling the
descriptor, so ``fileno()`` hands out a :class:`~ringipc.channels.doorbell.Doorbell`
instead of the raw descriptor.  Invariant, whenever a doorbell exists:
it is lit exactly while ``_start < _end`` (bytes are buffered).

Frames of ``_DIRECT`` bytes or more are not staged in the buffer: after what
was already buffered, the rest is read straight into its destination (the
caller's buffer for ``read_into``), together with whatever follows it, in one
``readv`` of two buffers.

Signals: the descriptor is non-blocking, so a read never sleeps; waiting
happens in ``poll``, where an exception from a signal handler consumes
nothing.  Consuming buffered bytes is only an index update, done after every
call that could raise, so it cannot be torn.  The one unsafe moment is just
after ``readv`` returned, before its count is stored, where a handler can
still run: ``_in_read`` marks that window, and an exception escaping from it
marks the stream as lost instead of silently dropping bytes."""
from __future__ import annotations

import os
import select
from typing import Any, Callable, List, Optional, Tuple, TypeVar, Union, cast

_T = TypeVar("_T")

from .doorbell import Doorbell
from ..core._recycle import MIN_BLOCK, Block
from ..errors import FrameError
from .framing import HEADER, HEADER_FIELDS, HEADER_SIZE, READ_EVENTS, wait_fd

_unpack_header: Callable[[Any, int], Tuple[int, int]] = HEADER_FIELDS.unpack_from  # (length, reserved)

#: Read-ahead buffer size: one read takes in up to this much.
_CHUNK = 64 * 1024
#: Frames this long or longer skip the buffer (a copy through it would cost more than it saves).
_DIRECT = 16 * 1024
_LOST = "a receive was interrupted while copying bytes; the stream position is lost"

assert HEADER_SIZE + _DIRECT <= _CHUNK  # a staged frame always fits the buffer

#: A direct frame's own buffer: a bytearray, or a recycled Block when large.
_Body = Union[bytearray, Block]


def _body_for(length: int) -> _Body:
    # Fresh memory for a large message page-faults at a fraction of the
    # copy's speed (core/_recycle.pyx): a Block reuses memory already faulted
    # in, and parks it again once the message (or the arrays an out-of-band
    # frame was rebuilt into, which look into it) is gone.
    return Block(length) if length >= MIN_BLOCK else bytearray(length)


class FrameReader:
    """Frames from ``fd``, resumable across timeouts and signals.

    ``pending`` is stream data already taken from ``fd`` by an earlier owner
    (see :meth:`pending`), read before anything new."""

    def __init__(self, fd: int, pending: bytes = b"") -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        # Larger than a chunk only to take over the rest of a big frame.
        self._buf = bytearray(max(_CHUNK, len(pending)))
        self._view = memoryview(self._buf)
        self._view[: len(pending)] = pending
        self._start = 0  # first unconsumed buffered byte
        self._end = len(pending)  # end of the buffered bytes
        # A direct frame in progress: its header is consumed and _body_got of
        # its bytes are in _body.  Set only between calls that were interrupted.
        self._body: Optional[_Body] = None
        self._body_got = 0
        self._direct_length = -1  # length of the direct frame in progress
        self._broken: Optional[str] = None
        self._in_read = False
        self._poller: Optional[select.poll] = None
        self._doorbell: Optional[Doorbell] = None
        #: False makes every read stop at the end of the current frame, for a
        #: descriptor that another reader takes over after some frames.
        self.read_ahead = True

    # --- what the channel asks besides frames ---------------------------------------------
    def fileno(self) -> int:
        """A descriptor readable while a frame may be received (see doorbell.py)."""
        if self._doorbell is None:
            self._doorbell = Doorbell(self.fd, self._end > self._start)
        return self._doorbell.fileno()

    def buffered(self) -> bool:
        """Whether stream bytes wait in our buffer, so the channel counts as
        readable (what the doorbell shows).  Part of a big frame kept from an
        interrupted read does not count: the rest must still arrive."""
        return self._end > self._start

    def pending(self) -> bytes:
        """The stream bytes taken from the kernel but not yet delivered, as they
        were on the wire, so that a new reader (in another process) can go on."""
        if self._broken is not None:
            raise FrameError(self._broken)
        rest = bytes(self._view[self._start : self._end])
        if self._body is not None:
            rest = HEADER.pack(len(self._body)) + bytes(memoryview(self._body)[: self._body_got]) + rest
        return rest

    def close(self) -> None:
        if self._doorbell is not None:
            self._doorbell.close()
            self._doorbell = None

    # --- receiving ------------------------------------------------------------------------
    def read(self, limit: Optional[int], deadline: Optional[float]) -> "bytes | _Body":
        """One whole frame's payload."""
        # The busy case: the whole frame is already buffered.  No system call,
        # unless this frame empties the buffer and a doorbell must go dark.
        start = self._start
        end = self._end
        if end - start >= HEADER_SIZE and self._body is None:
            length, reserved = _unpack_header(self._buf, start)
            stop = start + HEADER_SIZE + length
            if stop <= end and not reserved and (limit is None or length <= limit):
                message = bytes(self._view[start + HEADER_SIZE : stop])
                # _consume_to, written out: a call is a visible part of a small message's cost.
                if self._doorbell is not None:
                    self._doorbell.show(stop < end)
                if stop == end:
                    self._start = self._end = 0
                else:
                    self._start = stop
                return message
        return self._guarded(self._read, limit, deadline)

    def read_into(self, view: memoryview, limit: Optional[int], deadline: Optional[float]) -> Union[int, bytes]:
        """Receive straight into ``view`` when the frame fits and return its
        length; otherwise return the frame as bytes."""
        start = self._start
        end = self._end
        if end - start >= HEADER_SIZE and self._body is None:
            length, reserved = _unpack_header(self._buf, start)
            stop = start + HEADER_SIZE + length
            if stop <= end and not reserved and length <= len(view) and (limit is None or length <= limit):
                view[:length] = self._view[start + HEADER_SIZE : stop]
                self._consume_to(stop)
                return length
        return self._guarded(self._read_into, view, limit, deadline)

    # --- the careful path -----------------------------------------------------------------
    def _guarded(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._broken is not None:
            raise FrameError(self._broken)
        try:
            return fn(*args)
        except BaseException:
            if self._in_read:
                self._in_read = False
                self._break(_LOST)
            raise

    def _break(self, reason: str) -> None:
        # Nothing buffered is trustworthy any more; emptying the buffer also
        # keeps the fast paths from serving it.
        self._broken = reason
        self._start = self._end = 0
        self._body = None
        self._direct_length = -1
        if self._doorbell is not None:
            self._doorbell.show(False)

    def _read_some(self, buffers: List[Any], deadline: Optional[float]) -> int:
        """readv into ``buffers``, waiting until the descriptor has data.  On
        return ``_in_read`` is set until the caller has stored the count."""
        while True:
            self._in_read = True
            try:
                return os.readv(self.fd, buffers)
            except BlockingIOError:
                self._in_read = False
            except OSError:
                self._in_read = False  # raised by readv itself: nothing was consumed
                raise
            if self._poller is None:
                # Kept: a receiver that keeps up with its peer waits once per message.
                self._poller = select.poll()
                self._poller.register(self.fd, READ_EVENTS)
            if not wait_fd(self.fd, READ_EVENTS, deadline, self._poller):
                raise TimeoutError("timed out waiting for the peer")

    def _fill(self, need: int, deadline: Optional[float]) -> None:
        """Make at least ``need`` (at most the buffer's size) bytes available from ``_start``."""
        if self._end - self._start >= need:
            return
        if self._start + need > len(self._buf):
            # Move the partial frame to the front; memoryview assignment copies
            # overlapping ranges correctly (memmove).
            have = self._end - self._start
            self._view[:have] = self._view[self._start : self._end]
            self._start, self._end = 0, have
        while self._end - self._start < need:
            stop = len(self._buf) if self.read_ahead else self._start + need
            got = self._read_some([self._view[self._end : stop]], deadline)
            self._end += got
            self._in_read = False
            if not got:
                self._eof(self._end - self._start, need)
            if self._doorbell is not None:
                self._doorbell.show(True)

    def _eof(self, have: int, need: int) -> None:
        if not have:
            raise EOFError("the peer closed the channel")
        if need == HEADER_SIZE:
            raise ConnectionResetError(f"the peer went away inside a frame header ({have} of {HEADER_SIZE} bytes)")
        raise ConnectionResetError(
            f"the peer went away inside a frame ({have - HEADER_SIZE} of {need - HEADER_SIZE} bytes received)"
        )

    def _header(self, limit: Optional[int], deadline: Optional[float]) -> int:
        """Buffer the next frame's header and return its length (not consuming it)."""
        self._fill(HEADER_SIZE, deadline)
        length, reserved = _unpack_header(self._buf, self._start)
        if reserved:
            self._break("a frame header with non-zero reserved bytes arrived: the peer does not speak ringipc's framing")
            raise FrameError(self._broken)
        if limit is not None and length > limit:
            # Refused before allocating anything; the stream cannot be re-aligned
            # without trusting the length, so the channel is unusable from here on.
            self._break(f"a frame announced {length} bytes, over the {limit}-byte limit")
            raise FrameError(self._broken)
        return length

    def _take_staged(self, length: int, deadline: Optional[float]) -> memoryview:
        """Buffer a whole small frame; return its payload and consume it.  The
        view is valid until the next read."""
        self._fill(HEADER_SIZE + length, deadline)
        start = self._start + HEADER_SIZE
        stop = start + length
        self._consume_to(stop)
        return self._view[start:stop]

    def _consume_to(self, stop: int) -> None:
        """Mark the buffer consumed up to ``stop``.  The doorbell, the one
        call that can raise, goes first, so an exception consumes nothing."""
        if self._doorbell is not None:
            self._doorbell.show(stop < self._end)
        if stop == self._end:
            self._start = self._end = 0
        else:
            self._start = stop

    def _start_direct(self, length: int, target: memoryview, body: Optional[_Body]) -> None:
        """Consume the header and the buffered part of a direct frame into
        ``target`` (which is ``body``'s memory when the frame goes to our own
        buffer, or the caller's).  Progress is then kept in ``_body_got``."""
        start = self._start + HEADER_SIZE
        have = min(length, self._end - start)
        target[:have] = self._view[start : start + have]
        stop = start + have
        if self._doorbell is not None:
            self._doorbell.show(stop < self._end)
        # _consume_to, written out: with no call from here on, the consumption
        # and its record below land together (a signal cannot come between).
        if stop == self._end:
            self._start = self._end = 0
        else:
            self._start = stop
        self._body_got = have
        self._body = body
        self._direct_length = length

    def _finish_direct(self, target: memoryview, deadline: Optional[float]) -> None:
        """Read the rest of the direct frame into ``target``, and what follows
        it into the buffer, which is empty whenever the frame is incomplete."""
        length = self._direct_length
        while self._body_got < length:
            rest = target[self._body_got : length]
            n = self._read_some([rest, self._view] if self.read_ahead else [rest], deadline)
            part = min(n, length - self._body_got)
            self._body_got += part
            self._end = n - part
            self._in_read = False
            if not n:
                raise ConnectionResetError(
                    f"the peer went away inside a frame ({self._body_got} of {length} bytes received)"
                )
            if n > part and self._doorbell is not None:
                self._doorbell.show(True)

    def _resume_body(self, deadline: Optional[float]) -> _Body:
        body = cast(_Body, self._body)  # called only with a body pending
        self._finish_direct(memoryview(body), deadline)
        self._body = None
        self._direct_length = -1
        return body

    def _abandon_direct(self, view: memoryview, exc: BaseException) -> None:
        """A direct read into the caller's ``view`` stopped part-way: keep what
        arrived in a buffer of our own, so that the next call resumes."""
        length = self._direct_length
        if length < 0 or self._body is not None or self._in_read:
            return  # not started, already ours, or about to be marked lost by _guarded
        if self._body_got == length or isinstance(exc, ConnectionResetError):
            # Complete (the exception came after: as if it hit our return) or
            # the peer is gone: nothing to resume.
            self._direct_length = -1
            return
        body = bytearray(length)
        body[: self._body_got] = view[: self._body_got]
        self._body = body

    def _read(self, limit: Optional[int], deadline: Optional[float]) -> "bytes | _Body":
        if self._body is not None:
            return self._resume_body(deadline)
        length = self._header(limit, deadline)
        if length < _DIRECT:
            return bytes(self._take_staged(length, deadline))
        body = _body_for(length)
        self._start_direct(length, memoryview(body), body)
        return self._resume_body(deadline)

    def _read_into(self, view: memoryview, limit: Optional[int], deadline: Optional[float]) -> Union[int, bytes]:
        if self._body is not None:
            body = self._resume_body(deadline)
            if len(body) > len(view):
                return bytes(body)
            view[: len(body)] = body
            return len(body)
        length = self._header(limit, deadline)
        if length > len(view):
            return bytes(self._read(limit, deadline))
        if length < _DIRECT:
            view[:length] = self._take_staged(length, deadline)
            return length
        try:
            self._start_direct(length, view, None)
            self._finish_direct(view, deadline)
        except BaseException as exc:
            self._abandon_direct(view, exc)
            raise
        self._direct_length = -1
        return length
