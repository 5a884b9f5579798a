"""Message channel over a UNIX ``SOCK_SEQPACKET`` socket: the kernel keeps the
boundaries, so no length framing is needed.

Each packet starts with one tag byte, because a zero-length packet and
end-of-file both read as 0 bytes and must be told apart.  The largest
message is bounded by the socket send buffer (``net.core.wmem_max``)."""
from __future__ import annotations

import errno
import socket
from typing import Optional

from ..channel import DEFAULT_MAX_MESSAGE_SIZE, BaseChannel
from ..errors import FrameError, MessageTooLarge
from ..framing import wait_readable

_DATA = b"\x01"
# As a plain int: or-ing the enum members on every receive costs more than the syscall's Python wrapper.
_PEEK_SIZE = int(socket.MSG_PEEK | socket.MSG_TRUNC)
# Kernel bookkeeping taken out of the send buffer for one packet; a safe margin.
_SKB_OVERHEAD = 4096


def tune_packet_socket(sock: socket.socket) -> None:
    """Ask for the largest send buffer the system allows (capped by net.core.wmem_max)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    except OSError:
        pass


class PacketChannel(BaseChannel):
    def __init__(self, sock: socket.socket, *, max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE):
        super().__init__(max_message_size)
        self._sock = sock
        tune_packet_socket(sock)
        # Linux reports the doubled value it reserved; half of it is payload room.
        sndbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        self.transport_limit = max(0, sndbuf // 2 - _SKB_OVERHEAD)
        self._peek = bytearray(1)
        self._peek_iov = [self._peek]

    # The everyday calls skip BaseChannel's general argument handling; any
    # other call takes the general path, so behaviour is identical.
    def send_bytes(self, buf, offset: int = 0, size: Optional[int] = None) -> None:
        if type(buf) is bytes and not offset and size is None and not self._closed and len(buf) <= self.transport_limit:
            self._send_message(buf)
        else:
            BaseChannel.send_bytes(self, buf, offset, size)

    def recv_bytes(self, maxlength: Optional[int] = None, timeout: Optional[float] = None) -> bytes:
        if maxlength is None and timeout is None and not self._closed:
            return bytes(self._recv_message(self._limit(), None))
        return BaseChannel.recv_bytes(self, maxlength, timeout)

    def fileno(self) -> int:
        self._check_open()
        return self._sock.fileno()

    def _send_message(self, view: memoryview) -> None:
        try:
            self._sock.sendmsg([_DATA, view])
        except OSError as exc:
            if exc.errno in (errno.EMSGSIZE, errno.ENOBUFS):
                raise MessageTooLarge(f"{len(view)}-byte packet refused by the kernel: {exc.strerror}") from exc
            raise

    def _wait(self, deadline) -> None:
        if deadline is not None and not wait_readable(self._sock.fileno(), deadline):
            raise TimeoutError("timed out waiting for the peer")

    def _next_length(self, limit, deadline) -> int:
        self._wait(deadline)
        # MSG_TRUNC with MSG_PEEK reports the packet's full size without consuming it.
        n = self._sock.recvmsg_into(self._peek_iov, 0, _PEEK_SIZE)[0]
        if n == 0:
            raise EOFError("the peer closed the channel")
        if self._peek[0:1] != _DATA:
            self.close()
            raise FrameError("a packet with an unknown tag arrived; connection closed")
        if limit is not None and n - 1 > limit:
            self._sock.recvmsg_into([self._peek])  # a short read drops the rest of the packet
            raise FrameError(f"a {n - 1}-byte message is over the {limit}-byte limit; it was discarded")
        return n - 1

    def _recv_message(self, limit, deadline) -> "bytes | bytearray":
        length = self._next_length(limit, deadline)
        if length <= 4096:
            # The tag comes back with the data and is cut off by one cheap copy,
            # instead of a second buffer and a second copy of the whole message.
            data = self._sock.recv(length + 1)
            return data[1:]
        body = bytearray(length)
        self._sock.recvmsg_into([self._peek, body])
        return body

    def _recv_message_into(self, view, limit, deadline):
        length = self._next_length(limit, deadline)
        if length > len(view):
            body = bytearray(length)
            self._sock.recvmsg_into([self._peek, body])
            return bytes(body)
        self._sock.recvmsg_into([self._peek, view[:length]])
        return length

    def _poll(self, deadline) -> bool:
        return wait_readable(self._sock.fileno(), deadline)

    def _close(self) -> None:
        self._sock.close()
