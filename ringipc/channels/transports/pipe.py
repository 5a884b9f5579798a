"""An anonymous channel pair over ``os.pipe`` for a parent and its children.

``pipe_pair()`` mirrors ``multiprocessing.Pipe``: duplex by default (two
pipes, one per direction), or ``duplex=False`` for ``(reader, writer)``.
Message ends pickle by duplicating their descriptors, so they can be handed
to a child under any start method; with ``fork`` they are simply inherited."""
from __future__ import annotations

import os
from typing import Any, Callable, Literal, Optional, Tuple, Union, overload

from ..address import check_mode
from ..bytestream import ByteStream
from ..channel import DEFAULT_MAX_MESSAGE_SIZE
from .stream import StreamChannel


class PipeChannel(StreamChannel):
    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        from multiprocessing.reduction import DupFd

        self._check_open()
        dup: Callable[[Optional[int]], Any] = lambda fd: None if fd is None else DupFd(fd)  # noqa: E731
        # Messages this end already read ahead travel with it: they are no
        # longer in the pipe for the new owner to read.
        pending = self._reader.pending() if self._reader is not None else b""
        return _rebuild, (dup(self._rfd), dup(self._wfd), self.max_message_size, pending)


def _rebuild(rdup: Any, wdup: Any, max_message_size: Optional[int], pending: bytes = b"") -> "PipeChannel":
    detach: Callable[[Any], Any] = lambda d: None if d is None else d.detach()  # noqa: E731
    return PipeChannel(detach(rdup), detach(wdup), max_message_size=max_message_size, pending=pending)


def _end(rfd: Optional[int], wfd: Optional[int], mode: str, max_message_size: Optional[int]) -> Any:
    if mode == "stream":
        return ByteStream(rfd, wfd)
    return PipeChannel(rfd, wfd, max_message_size=max_message_size)


@overload
def pipe_pair(duplex: bool = ..., *, mode: Literal["message"] = ...,
              max_message_size: Optional[int] = ...) -> Tuple[PipeChannel, PipeChannel]: ...
@overload
def pipe_pair(duplex: bool = ..., *, mode: Literal["stream"],
              max_message_size: Optional[int] = ...) -> Tuple[ByteStream, ByteStream]: ...
@overload
def pipe_pair(duplex: bool = ..., *, mode: str,
              max_message_size: Optional[int] = ...) -> Union[Tuple[PipeChannel, PipeChannel], Tuple[ByteStream, ByteStream]]: ...


def pipe_pair(duplex: bool = True, *, mode: str = "message",
              max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> Tuple[Any, Any]:
    """Two connected ends.  ``duplex=False`` returns ``(reader, writer)``."""
    check_mode(mode)
    r1, w1 = os.pipe()
    if not duplex:
        return _end(r1, None, mode, max_message_size), _end(None, w1, mode, max_message_size)
    r2, w2 = os.pipe()
    return _end(r1, w2, mode, max_message_size), _end(r2, w1, mode, max_message_size)
