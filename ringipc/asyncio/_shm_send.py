"""Sending on a ``shm://`` channel without blocking the loop.

A shm channel's message goes into the peer's ring and is then announced by
one *doorbell* byte on the channel's socket (its readiness for the peer's
``fileno()``; ringipc/channels/transports/shm.py).  Both can be full, and the
synchronous send blocks on either; here neither blocks the loop:

* The message is offered to the ring without blocking (the Connection's
  own checks: the peer looked at every PEER_CHECK seconds, messages larger
  than the ring through a slab or side segment - finding a free slab may
  still wait briefly, as in the synchronous send).  While the ring is full
  the send awaits the ring's *space* bell (AsyncBell, as ``AsyncRing`` and
  ``Connection`` do), and retries when a read frees room.
* The doorbell byte is written after the commit with ``MSG_DONTWAIT``.  If
  the socket buffer is full (the peer has not read its doorbells yet) the
  byte is owed: the loop writes the owed bytes, all in one ``send``, once
  the socket is writable (``add_writer``).  The message itself is in the
  ring and the send has returned; the peer's reads free the socket buffer.
  (If that loop stops first, the next send's loop takes the owed bytes
  over; ``close()`` drops them: the peer then sees the hang-up, which
  makes its ``fileno()`` readable, and drains the ring.)

Peer death.  The socket carries doorbell bytes, so "readable" does not
mean "the peer is gone".  A wait for room also watches an epoll descriptor
of its own on which the socket is registered for hang-ups only (EPOLLRDHUP;
EPOLLHUP and EPOLLERR always count): it becomes readable exactly when the
peer has closed or died, which wakes the send with BrokenPipeError at once.

Order and cancellation.  A task that finds others waiting queues behind
them (a FIFO lock), so concurrent sends go out in the order they were made.
The only await comes before the commit: a cancelled send has sent nothing
(a side segment it made is freed).  ``close()`` fails waiting sends with
ChannelClosed; doorbells still owed then are dropped with the socket (the
peer sees the hang-up and drains the ring).
"""
from __future__ import annotations

import asyncio
import select
import socket
from queue import Full
from typing import Any, Optional

from ..core import large
from ..errors import ChannelClosed
from ..mp import connection as _conn
from ..mp.oob import Frame
from ._bell import AsyncBell, FdWatch

__all__ = ["ShmSender"]

_DONTWAIT = int(socket.MSG_DONTWAIT) | int(socket.MSG_NOSIGNAL)
_HANGUP = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR


class ShmSender:
    """The sending side of one AsyncChannel over a :class:`ShmChannel`."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self._conn = channel._conn          # the ring Connection (a _LifelineConnection)
        self._sock: socket.socket = channel._sock
        self._bell: Optional[AsyncBell] = None      # made by the first wait for room
        self._watch: Optional[FdWatch] = None
        self._hangup: Optional["select.epoll"] = None
        self._lock = asyncio.Lock()         # senders that had to wait, in order
        self._queued = 0
        self._owed = 0                      # doorbell bytes of committed messages, not yet written
        self._flushing: Optional[asyncio.AbstractEventLoop] = None
        self._flush_fd = -1
        self._closed: Optional[BaseException] = None

    # -- sending -----------------------------------------------------------------------
    async def send(self, view: "memoryview | Frame") -> None:
        data = self._encode(view)
        try:
            if not self._queued and self._offer(data):
                self._doorbell()
                return
            self._queued += 1
            try:
                async with self._lock:
                    while not self._offer(data):
                        bell = self._space_bell()
                        if self._peer_gone():
                            raise _conn._broken_pipe()
                        await self._wait_for_room(bell, len(data))
            finally:
                self._queued -= 1
        except BaseException:
            if data is not view:
                large.discard(data)  # never sent: its slab or side segment is freed
            raise
        self._doorbell()

    def _encode(self, message: "memoryview | Frame") -> Any:
        """What the ring carries: the message, or a reference to a slab or
        side segment holding it (an out-of-band frame, as the synchronous
        send; a message larger than the ring, or looking like a reference)."""
        self._check_open()
        c = self._conn
        if type(message) is Frame or len(message) > c._limit or (
                message and not message[0] and large.is_reference(message)):
            return large.export(c._tx.name, message, c)
        return message

    def _offer(self, data: Any) -> bool:
        """Commit `data` to the ring without blocking; False if it is full."""
        self._check_open()
        c = self._conn
        c._check_peer()  # at most every PEER_CHECK seconds, as a synchronous send
        try:
            c._tx.send_bytes(data, False)
            return True
        except Full:
            return False

    def _check_open(self) -> None:
        closed = self._closed
        if closed is not None:
            raise type(closed)(*closed.args)  # a fresh one per send: tracebacks are not shared
        self._channel._check_open()

    # -- waiting for room -----------------------------------------------------------------
    def _space_bell(self) -> AsyncBell:
        bell = self._bell
        if bell is None:
            hangup = self._hangup = select.epoll(1)
            hangup.register(self._sock.fileno(), _HANGUP)
            # Registered with the loop only once the peer was seen alive (_peer_gone).
            self._watch = FdWatch(hangup.fileno())
            bell = self._bell = AsyncBell(self._conn._tx, writer=True, extra=self._watch)
        return bell

    async def _wait_for_room(self, bell: AsyncBell, size: int) -> None:
        try:
            await bell.wait(size)
        except OSError:
            self._check_open()  # close() let the bell go: its exception
            raise

    def _peer_gone(self) -> bool:
        """Whether the peer is gone; asks the socket (a system call) only
        when the hang-up watch fired, or nobody has asked yet."""
        watch = self._watch
        if watch is not None and not watch.fired:
            return False
        if self._conn._peer_gone():
            return True
        if watch is not None:
            watch.alive()
        return False

    # -- doorbells --------------------------------------------------------------------------
    def _doorbell(self) -> None:
        """Announce one committed message to the peer's ``fileno()``."""
        if self._owed:
            self._owed += 1  # behind bytes the socket had no room for: the loop writes it
            loop = asyncio.get_running_loop()
            if self._flushing is not loop:  # the loop that was to write them stopped
                self._stop_flushing()
                self._start_flushing(loop)
            return
        try:
            self._sock.send(b"\x01", _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            self._owed = 1
            self._start_flushing(asyncio.get_running_loop())
        except (BrokenPipeError, ConnectionResetError):
            # As the synchronous send: the message is committed; the peer may
            # have taken it and gone.  The next send reports the broken pipe.
            pass

    def _flush(self) -> None:
        try:
            self._owed -= self._sock.send(b"\x01" * self._owed, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._owed = 0  # the peer is gone; its doorbells with it
        if not self._owed:
            self._stop_flushing()

    def _start_flushing(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flushing = loop
        self._flush_fd = self._sock.fileno()
        loop.add_writer(self._flush_fd, self._flush)

    def _stop_flushing(self) -> None:
        loop, self._flushing = self._flushing, None
        if loop is not None and not loop.is_closed():
            loop.remove_writer(self._flush_fd)

    # -- lifetime ---------------------------------------------------------------------------
    def close(self, exc: BaseException) -> None:
        """The channel is closing: waiting sends raise `exc`."""
        self._closed = exc
        self._owed = 0
        self._stop_flushing()
        bell, self._bell = self._bell, None
        if bell is not None:
            bell.close()  # wakes the waiter, which raises `exc`
        hangup, self._hangup = self._hangup, None
        if hangup is not None:
            hangup.close()
