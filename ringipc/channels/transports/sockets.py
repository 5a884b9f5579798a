"""What UNIX and TCP sockets share: connecting with a deadline, the accept loop,
the handshake, and wrapping a connected socket in the requested mode."""
from __future__ import annotations

import socket
from typing import Any, Callable, Optional

from ..address import check_mode
from ..auth import check_authkey, client_handshake, refuse, server_handshake
from ..bytestream import ByteStream
from ..channel import DEFAULT_MAX_MESSAGE_SIZE, BaseListener, deadline_after, remaining
from ...errors import AuthenticationError
from ..framing import wait_readable
from .stream import StreamChannel


def wrap(sock: socket.socket, mode: str, max_message_size: Optional[int]) -> Any:
    """A connected, authenticated socket as a channel or a byte stream."""
    sock.setblocking(True)
    fd = sock.fileno()
    if sock.type == socket.SOCK_SEQPACKET:
        from .packet import PacketChannel

        return PacketChannel(sock, max_message_size=max_message_size)
    if mode == "stream":
        return ByteStream(fd, fd, owner=sock)
    return StreamChannel(fd, fd, owner=sock, max_message_size=max_message_size)


def check_kind(kind: int, mode: str) -> None:
    if kind == socket.SOCK_SEQPACKET and mode != "message":
        raise ValueError("seqpacket sockets carry messages only; use unix:// for a byte stream")


def open_connection(
    family: int,
    kind: int,
    sockaddr: Any,
    *,
    mode: str = "message",
    timeout: Optional[float] = None,
    authkey: Optional[bytes] = None,
    max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE,
    tune: Optional[Callable[[socket.socket], None]] = None,
) -> Any:
    check_kind(kind, check_mode(mode))
    authkey = check_authkey(authkey)
    deadline = deadline_after(timeout)
    sock = socket.socket(family, kind)
    try:
        if tune is not None:
            tune(sock)
        left = remaining(deadline)
        # settimeout(0) would mean non-blocking (BlockingIOError), not "time is up".
        sock.settimeout(None if left is None else max(left, 1e-6))
        sock.connect(sockaddr)
        sock.setblocking(True)
        client_handshake(sock.fileno(), authkey, deadline)
        return wrap(sock, mode, max_message_size)
    except BaseException:
        sock.close()
        raise


class SocketListener(BaseListener):
    """Accepts connections on a bound, listening socket and authenticates each one."""

    def __init__(
        self,
        sock: socket.socket,
        address: str,
        *,
        mode: str = "message",
        authkey: Optional[bytes] = None,
        max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE,
        check_peer: Optional[Callable[[socket.socket], None]] = None,
        tune: Optional[Callable[[socket.socket], None]] = None,
        on_close: Optional[Callable[[], None]] = None,
        handshake_timeout: Optional[float] = None,
    ) -> None:
        super().__init__()
        self._handshake_timeout = handshake_timeout
        self._sock = sock
        # Non-blocking so that a connection withdrawn between poll and accept
        # makes us wait again instead of blocking past the caller's deadline.
        sock.setblocking(False)
        self.address = address
        self._mode = check_mode(mode)
        self._authkey = check_authkey(authkey)
        self._max = max_message_size
        self._check_peer = check_peer
        self._tune = tune
        self._on_close = on_close

    def fileno(self) -> int:
        self._check_open()
        return self._sock.fileno()

    def accept(self, timeout: Optional[float] = None) -> Any:
        """Wait for one peer, authenticate it, and return its channel.

        ``timeout`` bounds the wait and the handshake together (TimeoutError),
        and the listener's ``handshake_timeout`` bounds the handshake alone;
        a peer that fails the handshake is disconnected and
        :class:`~ringipc.errors.AuthenticationError` is raised."""
        self._check_open()
        deadline = deadline_after(timeout)
        while True:
            if not wait_readable(self._sock.fileno(), deadline):
                raise TimeoutError(f"no connection on {self.address} before the timeout")
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                continue
            break
        try:
            conn.setblocking(True)
            if self._check_peer is not None:
                try:
                    self._check_peer(conn)
                except AuthenticationError:
                    refuse(conn.fileno())
                    raise
            if self._tune is not None:
                self._tune(conn)
            hs_deadline = deadline_after(self._handshake_timeout)
            if hs_deadline is not None and (deadline is None or hs_deadline < deadline):
                deadline = hs_deadline  # a silent peer must not hold accept() for ever
            server_handshake(conn.fileno(), self._authkey, deadline)
            return wrap(conn, self._mode, self._max)
        except BaseException:
            conn.close()
            raise

    def _close(self) -> None:
        try:
            self._sock.close()
        finally:
            if self._on_close is not None:
                self._on_close()
