"""One end of a ``unixgram://`` channel: a connected pair of UNIX datagram
sockets plus a lifeline (the handshake that makes them is in unixgram.py).

A datagram socket is a packet socket without end-of-file, so the channel is
a :class:`~ringipc.channels.transports.packet.PacketChannel` (same header,
same send and receive paths, same C fast path) with the end-of-file the
lifeline gives it: a connected ``SOCK_STREAM`` socketpair that carries no
data, whose far end the kernel closes when the last copy of the peer's
channel is closed or its process dies.

A receive with a timeout that finds no datagram waits in ``poll`` on both
the socket and the lifeline.  One without a timeout blocks in ``recvmsg``
like a bare socket, in C, waking every ``LIFELINE_CHECK`` seconds
(``SO_RCVTIMEO``) to hand over to the Python path, which looks at the
lifeline.  Datagrams the peer sent before it went are still delivered, then
``EOFError``.  ``fileno()`` is an epoll descriptor over the two, readable
exactly while a message or end-of-file is ready.  A send to a peer that has
gone raises ``BrokenPipeError`` (the kernel answers ``ECONNREFUSED``); that
failure also discards datagrams the peer had sent and this end had not yet
received (the kernel's rule for a datagram socket whose peer vanished), so
a reader that wants them receives before sending."""
from __future__ import annotations

import errno
import select
import socket
import struct
import time
from typing import Callable, Optional

from ..channel import DEFAULT_MAX_MESSAGE_SIZE
from ..framing import poll_ms
from .packet import PacketChannel

_DONTWAIT = socket.MSG_DONTWAIT
_READ = select.POLLIN | select.POLLHUP | select.POLLERR
#: How long a receive without timeout blocks in the kernel before it looks at
#: the lifeline (then it blocks again): the longest a dead peer goes unnoticed.
LIFELINE_CHECK = 0.05
#: What a socket whose peer has gone reports.
GONE_ERRNOS = (errno.ECONNREFUSED, errno.ENOTCONN, errno.ECONNRESET, errno.EPIPE)


def gone(exc: OSError, what: str) -> BrokenPipeError:
    return BrokenPipeError(errno.EPIPE, f"the peer has closed the channel ({what}: {exc.strerror})")


class UnixgramChannel(PacketChannel):
    """One end of a connected pair of datagram sockets plus the lifeline."""

    _unit = "datagram"

    def __init__(self, sock: socket.socket, lifeline: socket.socket, *,
                 max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE, peer_pid: int = 0) -> None:
        self._lifeline = lifeline
        self.peer_pid = peer_pid
        sock.setblocking(True)
        try:
            # The handshake wanted credentials; data datagrams must not pay for them.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 0)
        except OSError:
            pass
        sec = int(LIFELINE_CHECK)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                        struct.pack("ll", sec, int((LIFELINE_CHECK - sec) * 1e6)))
        self._fd = sock.fileno()
        self._life_fd = lifeline.fileno()
        self._poller = select.poll()
        self._poller.register(self._fd, _READ)
        self._poller.register(self._life_fd, _READ)
        self._peer_gone = False  # the lifeline hung up: EOF once the socket is empty
        self._epoll: Optional[select.epoll] = None
        super().__init__(sock, max_message_size=max_message_size)
        self._fast_hand_over()

    def fileno(self) -> int:
        """An epoll descriptor over the socket and the lifeline: readable while a
        datagram waits or the peer has gone (end-of-file)."""
        self._check_open()
        if self._epoll is None:
            ep = select.epoll()
            ep.register(self._fd, select.EPOLLIN)
            ep.register(self._life_fd, select.EPOLLIN)
            self._epoll = ep
        return self._epoll.fileno()

    def _raise_send_error(self, exc: OSError, size: int) -> None:
        if exc.errno in GONE_ERRNOS:
            self._peer_gone = True
            raise gone(exc, "send") from exc
        super()._raise_send_error(exc, size)

    def _check(self, n: int, header_ok: bool, limit: int) -> None:
        # A datagram of 0 bytes is not end-of-file (that is the lifeline's job): it has no header.
        self._refuse(n, header_ok, limit)

    def _wait(self, deadline: Optional[float]) -> bool:
        """Wait for a datagram or the lifeline's hang-up; False on timeout."""
        while True:
            self._check_open()
            ready = self._poller.poll(poll_ms(deadline))
            if ready:
                if any(fd == self._life_fd for fd, _ in ready):
                    self._peer_gone = True
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def _receiving(self, deadline: Optional[float], receive: Callable[..., int]) -> int:
        """Run ``receive(MSG_DONTWAIT)`` until it gets a datagram; EOFError once
        the peer has gone and nothing is left."""
        while True:
            try:
                return receive(_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._check_open()
                if exc.errno in GONE_ERRNOS:
                    raise EOFError("the peer closed the channel") from exc
                raise
            # Seen gone before this receive came up empty: everything it sent is in.
            if self._peer_gone:
                raise EOFError("the peer closed the channel")
            if not self._wait(deadline):
                raise TimeoutError("timed out waiting for the peer")

    def _poll(self, deadline: Optional[float]) -> bool:
        # Readable socket or hung-up lifeline: a datagram or EOF is ready.
        return self._wait(deadline)

    def _close(self) -> None:
        super()._close()
        if self._epoll is not None:
            self._epoll.close()
        self._lifeline.close()
