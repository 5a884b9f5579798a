"""A message channel over a pair of stream file descriptors (pipe, FIFO, socket),
using :mod:`ringipc.channels.framing` for boundaries.  Every stream transport is this
class plus the code that opens its descriptors.

The receiving side reads ahead (frame_reader.py), so ``fileno()`` is a
doorbell descriptor that is readable while a message is ready, not the raw
read descriptor."""
from __future__ import annotations

import os
import pickle
import socket
from typing import Any, Optional

from ..channel import DEFAULT_MAX_MESSAGE_SIZE, BaseChannel, deadline_after, load_message
from ...errors import BufferTooShort, FrameError
from ..frame_reader import FrameReader
from ..framing import COALESCE_BELOW, HEADER, finish_frame, wait_readable, write_all, write_frame
from ...mp.oob import Frame

_pack_header = HEADER.pack


class StreamChannel(BaseChannel):
    """Framed messages over ``read_fd``/``write_fd`` (the same fd for a socket).

    A stream has no transport limit (``transport_limit`` stays ``None``), so
    the receive limit is ``max_message_size`` alone.

    ``owner`` is a socket object whose lifetime the channel takes over; plain
    fds (pipes, FIFOs) are closed with ``os.close``.  ``pending`` is stream
    data an earlier owner of ``read_fd`` had already read (see ``__reduce__``
    of the pipe channel)."""

    def __init__(
        self,
        read_fd: Optional[int],
        write_fd: Optional[int],
        *,
        owner: Optional[socket.socket] = None,
        max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE,
        pending: bytes = b"",
    ) -> None:
        super().__init__(max_message_size)
        self._rfd = read_fd
        self._wfd = write_fd
        self._owner = owner
        # None only on a send-only end, whose receiving calls raise (_need) before touching it.
        self._reader: FrameReader = FrameReader(read_fd, pending) if read_fd is not None else None  # type: ignore[assignment]  # see above

    @property
    def readable(self) -> bool:
        return self._rfd is not None

    @property
    def writable(self) -> bool:
        return self._wfd is not None

    def fileno(self) -> int:
        """A descriptor to wait on for incoming messages: readable while one is
        ready (or EOF).  A send-only end returns its write descriptor."""
        self._check_open()
        if self._reader is not None:
            return self._reader.fileno()
        return self._wfd

    def raw_fileno(self) -> int:
        """The read descriptor itself (not the doorbell ``fileno()`` returns),
        for code that takes the connection over."""
        self._check_open()
        return self._need(self._rfd, "readable")

    def stop_reading_ahead(self) -> None:
        """Make every receive stop at the end of its message, so that nothing
        after it is taken from the descriptor: for a connection whose
        descriptor another reader takes over after a few messages."""
        if self._reader is not None:
            self._reader.read_ahead = False

    def _need(self, fd: Optional[int], what: str) -> int:
        if fd is None:
            raise OSError(f"this end of the channel is not {what}")
        return fd

    # The three calls below skip BaseChannel's general argument handling for
    # the everyday call (a whole bytes object, no timeout): per-message Python
    # work is most of what a small message costs.  Anything else takes the
    # general path, so behaviour is identical.
    def send_bytes(self, buf: Any, offset: int = 0, size: Optional[int] = None) -> None:
        wfd = self._wfd  # None once closed
        if type(buf) is bytes and not offset and size is None and wfd is not None and len(buf) < COALESCE_BELOW:
            # write_frame's small case, written out.
            data = _pack_header(len(buf)) + buf
            try:
                done = os.write(wfd, data)
            except BlockingIOError:
                done = 0
            except OSError:
                raise  # from write itself: nothing was written
            except BaseException:
                self.close()  # a handler ran after a write that may have happened: see _send_message
                raise
            if done != len(data):
                try:
                    finish_frame(wfd, data, done)
                except BaseException as exc:
                    if getattr(exc, "torn_write", False):
                        self.close()
                    raise
        else:
            BaseChannel.send_bytes(self, buf, offset, size)

    def recv_bytes(self, maxlength: Optional[int] = None, timeout: Optional[float] = None) -> bytes:
        if maxlength is None and timeout is None and not self._closed and self._rfd is not None:
            try:
                return bytes(self._reader.read(self._max_message_size, None))
            except FrameError:
                self.close()  # see _recv_message
                raise
        return BaseChannel.recv_bytes(self, maxlength, timeout)

    def recv_bytes_into(self, buf: Any, offset: int = 0, timeout: Optional[float] = None) -> int:
        if type(buf) is bytearray and not offset and timeout is None and not self._closed and self._rfd is not None:
            got = self._recv_message_into(memoryview(buf), self._limit(), None)
            if type(got) is int:
                return got
            raise BufferTooShort(got)
        return BaseChannel.recv_bytes_into(self, buf, offset, timeout)

    def recv(self, timeout: Optional[float] = None) -> Any:
        # As recv_bytes, without its bytes(): a large message arrives in a
        # buffer of its own (frame_reader.py), which an out-of-band frame's
        # arrays then look into.
        if timeout is None and not self._closed and self._rfd is not None:
            try:
                data = self._reader.read(self._max_message_size, None)
            except FrameError:
                self.close()  # see _recv_message
                raise
        else:
            self._check_open()
            data = self._recv_message(self._limit(), deadline_after(timeout))
        if type(data) is bytes and data and data[0]:  # a small pickle: load_message's test, inline
            return pickle.loads(data)
        return load_message(data)

    def _send_frame(self, frame: Frame) -> None:
        # Gathered: the frame header, then the object's own buffers, in one
        # writev (write_all), never joined into one bytes object first.
        self._send_pieces([HEADER.pack(frame.size), *frame.pieces()])

    def _send_message(self, view: memoryview) -> None:
        self._send_pieces(view)

    def _send_pieces(self, what: Any) -> None:
        """Write one frame: a payload (write_frame) or a list of buffers that
        already starts with its header."""
        try:
            wfd = self._need(self._wfd, "writable")
            if type(what) is list:
                write_all(wfd, what)
            else:
                write_frame(wfd, what)
        except BaseException as exc:
            if getattr(exc, "torn_write", False):
                # Part of a frame may be on the wire; anything sent after it
                # would be misread as its remainder.  Closing turns it into a
                # clean ConnectionResetError at the peer instead.
                self.close()
            raise

    def _recv_message(self, limit: Optional[int], deadline: Optional[float]) -> "bytes | bytearray":
        self._need(self._rfd, "readable")
        try:
            return self._reader.read(limit, deadline)  # type: ignore[return-value]  # or a Block: bytes-like
        except FrameError:
            # The peer sent something we cannot frame: drop the connection rather
            # than read further bytes of unknown meaning.
            self.close()
            raise

    def _recv_message_into(self, view: memoryview, limit: Optional[int], deadline: Optional[float]) -> "int | bytes":
        self._need(self._rfd, "readable")
        try:
            return self._reader.read_into(view, limit, deadline)
        except FrameError:
            self.close()
            raise

    def _poll(self, deadline: Optional[float]) -> bool:
        fd = self._need(self._rfd, "readable")
        return self._reader.buffered() or wait_readable(fd, deadline)

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._owner is not None:
            self._owner.close()
        else:
            for fd in {fd for fd in (self._rfd, self._wfd) if fd is not None}:
                os.close(fd)
        self._rfd = self._wfd = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"r={self._rfd} w={self._wfd}"
        return f"<{type(self).__name__} {state}>"
