"""A descriptor that is readable while a message is ready, for readers that buffer.

A reader that reads ahead (see frame_reader.py) holds messages the kernel no
longer knows about, so polling the data descriptor alone would sleep while a
message waits in our buffer.  A :class:`Doorbell` is an epoll descriptor
watching two things: the data descriptor, and an eventfd that the reader
keeps non-zero exactly while its buffer holds bytes.  An epoll descriptor is
itself pollable, so ``select``, ``selectors``, ``asyncio`` and
``multiprocessing.connection.wait`` can all wait on it.

It is made only when somebody asks for ``fileno()``: a reader nobody polls
from outside never pays for it."""
from __future__ import annotations

import os
import select


class Doorbell:
    def __init__(self, data_fd: int, lit: bool) -> None:
        self._eventfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        try:
            self._epoll = select.epoll()
            self._epoll.register(data_fd, select.EPOLLIN)
            self._epoll.register(self._eventfd, select.EPOLLIN)
        except BaseException:
            os.close(self._eventfd)
            raise
        # None means "unknown": set while a system call changes the eventfd, so
        # an exception escaping from it makes the next show() redo the call.
        self._lit: bool | None = False
        self.show(lit)

    def fileno(self) -> int:
        return self._epoll.fileno()

    def show(self, lit: bool) -> None:
        """Make the bell say whether our buffer holds bytes.  No system call
        when it already says so, which is the common case per message."""
        if lit is self._lit:
            return
        self._lit = None
        if lit:
            os.eventfd_write(self._eventfd, 1)
        else:
            try:
                os.eventfd_read(self._eventfd)  # resets the counter to zero
            except BlockingIOError:
                pass  # already zero
        self._lit = lit

    def close(self) -> None:
        self._epoll.close()
        os.close(self._eventfd)
