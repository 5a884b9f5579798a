"""Byte-stream mode: a file object with pipe semantics over a stream transport.

Bytes written may be read back in any chunking; there are no message
boundaries.  The class is an :class:`io.RawIOBase`, so ``io.BufferedReader``,
``io.BufferedWriter`` and ``io.TextIOWrapper`` stack on it as on a pipe.
"""
from __future__ import annotations

import io
import os
import socket
from typing import Any, Optional

from .channel import deadline_after
from .framing import wait_readable


# Buffers readv fills byte for byte whatever their format; anything else
# goes through a cast.
_PLAIN_BUFFERS = (bytearray, memoryview)


class ByteStream(io.RawIOBase):
    """Raw byte stream over ``read_fd``/``write_fd`` (one fd for a socket).

    ``timeout`` (seconds, ``None`` = block) bounds each ``readinto``; it is
    measured on the monotonic clock and raises :class:`TimeoutError`."""

    def __init__(
        self,
        read_fd: Optional[int],
        write_fd: Optional[int],
        *,
        owner: Optional[socket.socket] = None,
        timeout: Optional[float] = None,
    ) -> None:
        super().__init__()
        self._rfd = read_fd
        self._wfd = write_fd
        self._owner = owner
        self.timeout = timeout

    def readable(self) -> bool:
        return self._rfd is not None

    def writable(self) -> bool:
        return self._wfd is not None

    def fileno(self) -> int:
        self._checkClosed()
        fd = self._rfd if self._rfd is not None else self._wfd
        if fd is None:
            raise ValueError("I/O operation on a closed stream")
        return fd

    def readinto(self, b: Any) -> int:
        rfd = self._rfd  # None once closed
        if rfd is not None and self.timeout is None and type(b) in _PLAIN_BUFFERS:
            # The everyday call, without the general path's checks and view
            # casts; readv of an empty buffer returns 0, as RawIOBase asks.
            return os.readv(rfd, [b])
        self._checkClosed()
        if self._rfd is None:
            raise io.UnsupportedOperation("this end of the stream is not readable")
        view = memoryview(b).cast("B")
        if not len(view):
            return 0
        if self.timeout is not None and not wait_readable(self._rfd, deadline_after(self.timeout)):
            raise TimeoutError("timed out waiting for the peer")
        return os.readv(self._rfd, [view])

    def write(self, b: Any) -> int:
        wfd = self._wfd  # None once closed
        if wfd is not None and type(b) is bytes:
            return os.write(wfd, b)  # the everyday call, as readinto's
        self._checkClosed()
        if self._wfd is None:
            raise io.UnsupportedOperation("this end of the stream is not writable")
        view = memoryview(b).cast("B")
        if not len(view):
            return 0
        return os.write(self._wfd, view)

    def close(self) -> None:
        if not self.closed:
            try:
                if self._owner is not None:
                    self._owner.close()
                else:
                    for fd in {fd for fd in (self._rfd, self._wfd) if fd is not None}:
                        os.close(fd)
            finally:
                self._rfd = self._wfd = None
                super().close()
