"""``unixgram:///PATH`` and ``unixgram://@NAME``: channels over UNIX
``SOCK_DGRAM`` sockets (Linux).  The kernel keeps message boundaries and
never drops a datagram between local sockets (a full receiver makes the
sender wait), but the socket has no connections: this module gives it one.

What ``listen``/``accept``/``connect`` mean here.  The listener binds PATH
(mode 0600, as ``unix://``) or the abstract NAME and receives *hello*
datagrams on it.  A connector makes its own socket (autobound: an abstract
name the kernel picks) and a lifeline, a connected ``SOCK_STREAM`` socketpair
that carries no data, and sends the hello to the listener with one end of
the lifeline attached (``SCM_RIGHTS``).  ``accept()`` takes one hello,
checks the sender's uid (``SCM_CREDENTIALS``; same user or root unless
``allow_other_users=True``), makes a **new socket for that peer**, connects
it to the connector's address and answers from it.  The connector connects
its socket to the answer's sender and acknowledges, so each channel is a
pair of sockets connected to each other: the kernel refuses datagrams to
either from anybody else, and a listener serves any number of peers, each
on its own channel, as ``unix://`` does.  Handshake datagrams are queued
before the sockets are connected, so each side empties its socket after
connecting and before the next step: nothing a third process slipped in can
reach the channel.

End of file comes through the lifeline: the kernel closes the peer's end
when the last copy of the peer's channel is closed or its process dies
(unixgram_channel.py says how receives, ``fileno()`` and sends use it).

Wire format: a 16-byte header (tag byte 1, 15 zero bytes), then the payload,
one datagram per message, as ``unixpacket://``.  A datagram without it is
refused with ``FrameError`` and closes the channel; one over the receive
limit is refused with ``FrameError`` and discarded (the channel goes on).
The largest message is bounded by the send buffer (``net.core.wmem_max``):
``transport_limit`` says it and a longer message raises ``MessageTooLarge``
before anything is sent.  The kernel also bounds how many datagrams wait
unread (``net.unix.max_dgram_qlen``, 10 by default): a sender then waits.
"""
from __future__ import annotations

import array
import errno
import hmac
import os
import secrets
import select
import socket
import struct
import time
from typing import Any, Callable, List, Optional, Tuple

from ..address import check_mode, register_scheme
from ..auth import _mac, check_authkey
from ..channel import DEFAULT_MAX_MESSAGE_SIZE, BaseListener, deadline_after
from ...errors import AuthenticationError
from ..framing import poll_ms, wait_readable
from .unix import bind, sockaddr
from .unixgram_channel import LIFELINE_CHECK, UnixgramChannel

__all__ = ["LIFELINE_CHECK", "UnixgramChannel", "UnixgramListener", "connect", "listen"]

_DONTWAIT = socket.MSG_DONTWAIT
_READ = select.POLLIN | select.POLLHUP | select.POLLERR

# Handshake datagrams.
_MAGIC = b"RGDGRAM1"
_HELLO, _ACCEPT, _REFUSE, _ACK = b"H", b"A", b"R", b"K"
_NONCE = 32
_MAC = 32
_UCRED = struct.Struct("3i")  # pid, uid, gid
_ANCILLARY = socket.CMSG_SPACE(4 * 4) + socket.CMSG_SPACE(_UCRED.size)


def _credentials(ancillary: Any) -> Tuple[List[int], Any]:  # creds: (pid, uid, gid) or None
    """(fds, (pid, uid, gid) or None) from recvmsg's ancillary data."""
    fds: List[int] = []
    creds = None
    for level, kind, data in ancillary:
        if level != socket.SOL_SOCKET:
            continue
        if kind == socket.SCM_RIGHTS:
            arr = array.array("i")
            arr.frombytes(data[: len(data) - len(data) % arr.itemsize])
            fds.extend(arr)
        elif kind == socket.SCM_CREDENTIALS and len(data) >= _UCRED.size:
            creds = _UCRED.unpack_from(data)
    return fds, creds


def _admitted(creds: Any, allow_other_users: bool) -> bool:
    return allow_other_users or (creds is not None and creds[1] in (os.getuid(), 0))


def _drain(sock: socket.socket) -> None:
    """Drop whatever waits on ``sock``: before it was connected anybody could send to it."""
    while True:
        try:
            sock.recv(1, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return


def _handshake_error(data: bytes) -> Optional[Exception]:
    """The error a refusal datagram carries, or None if ``data`` is not one."""
    if data.startswith(_MAGIC + _REFUSE):
        reason = data[len(_MAGIC) + 1 + _NONCE:].decode("utf-8", "replace")
        return AuthenticationError(reason or "the listener refused this peer")
    return None


class UnixgramListener(BaseListener):
    def __init__(self, sock: socket.socket, address: str, *, authkey: Optional[bytes] = None,
                 max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE, allow_other_users: bool = False,
                 handshake_timeout: Optional[float] = None, on_close: Optional[Callable[[], None]] = None) -> None:
        super().__init__()
        self._sock = sock
        self.address = address
        self._authkey = check_authkey(authkey)
        self._max = max_message_size
        self._allow_other_users = allow_other_users
        self._handshake_timeout = handshake_timeout
        self._on_close = on_close

    def fileno(self) -> int:
        """Readable while a connector's hello waits."""
        self._check_open()
        return self._sock.fileno()

    def _refuse(self, addr: Any, nonce: bytes, reason: str) -> None:
        try:
            self._sock.sendto(_MAGIC + _REFUSE + nonce + reason.encode(), _DONTWAIT, addr)
        except OSError:
            pass

    def _next_hello(self, deadline: Optional[float]) -> Tuple[Any, Any, bytes, bool, Any]:
        """(lifeline, creds, nonce, wants_auth, addr) of the next well-formed hello."""
        while True:
            if not wait_readable(self._sock.fileno(), deadline):
                raise TimeoutError(f"no connection on {self.address} before the timeout")
            try:
                data, anc, _, addr = self._sock.recvmsg(256, _ANCILLARY, _DONTWAIT | socket.MSG_CMSG_CLOEXEC)
            except (BlockingIOError, InterruptedError):
                continue
            fds, creds = _credentials(anc)
            lifeline = None
            if (fds and addr and len(data) == len(_MAGIC) + 2 + _NONCE
                    and data.startswith(_MAGIC + _HELLO) and data[len(_MAGIC) + 1] in (0, 1)):
                try:
                    lifeline = socket.socket(fileno=fds.pop(0))
                except OSError:
                    lifeline = None
                if lifeline is not None and (lifeline.family != socket.AF_UNIX or lifeline.type != socket.SOCK_STREAM):
                    lifeline.detach()  # left in fds' place below
                    lifeline = None
            for fd in fds:  # anything else that came along is not ours to keep
                os.close(fd)
            if lifeline is None:
                continue  # not a ringipc hello: ignore it
            return lifeline, creds, data[len(_MAGIC) + 2:], data[len(_MAGIC) + 1] == 1, addr

    def accept(self, timeout: Optional[float] = None) -> UnixgramChannel:
        """Take one connector's hello and return a channel connected to it.

        ``timeout`` bounds the wait and the handshake together; the listener's
        ``handshake_timeout`` bounds the handshake alone."""
        self._check_open()
        deadline = deadline_after(timeout)
        while True:
            lifeline, creds, nonce, wants_auth, addr = self._next_hello(deadline)
            if not _hung_up(lifeline):
                break
            lifeline.close()  # its connector gave up (timed out, or died) before we got to it
        peer = None
        try:
            if not _admitted(creds, self._allow_other_users):
                uid = creds[1] if creds else "unknown"
                self._refuse(addr, nonce, "the listener does not admit this peer (another user)")
                raise AuthenticationError(f"peer runs as uid {uid}, not ours ({os.getuid()}); refused")
            if self._authkey is not None and not wants_auth:
                self._refuse(addr, nonce, "the listener requires an authkey")
                raise AuthenticationError("the peer gave no authkey; refused")
            hs = deadline_after(self._handshake_timeout)
            if hs is not None and (deadline is None or hs < deadline):
                deadline = hs
            peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            # With SO_PASSCRED, connect() binds the socket to an abstract name
            # first, so the connector learns where the answer came from.
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            try:
                peer.connect(addr)
            except (ConnectionRefusedError, FileNotFoundError) as exc:
                raise ConnectionResetError(errno.ECONNRESET, "the peer went away before it was accepted") from exc
            _drain(peer)
            mine = secrets.token_bytes(_NONCE)
            mac = _mac(self._authkey, b"server", nonce, mine) if self._authkey is not None else b""
            peer.send(_MAGIC + _ACCEPT + nonce + mine + mac)
            # The acknowledgement: the connector is connected to us and has emptied its socket.
            poller = select.poll()
            poller.register(peer.fileno(), _READ)
            poller.register(lifeline.fileno(), _READ)
            while True:
                ready = dict(poller.poll(poll_ms(deadline)))
                if peer.fileno() in ready:
                    ack = peer.recv(256, _DONTWAIT)
                    expect = _MAGIC + _ACK + (_mac(self._authkey, b"client", mine, nonce) if self._authkey else b"")
                    if len(ack) == len(expect) and ack[: len(_MAGIC) + 1] == _MAGIC + _ACK and (
                            self._authkey is None or hmac.compare_digest(ack, expect)):
                        break
                    raise AuthenticationError("the peer's acknowledgement did not prove the authkey; refused")
                if lifeline.fileno() in ready:
                    raise ConnectionResetError(errno.ECONNRESET, "the peer went away during the handshake")
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError("the peer did not finish the handshake before the timeout")
            return UnixgramChannel(peer, lifeline, max_message_size=self._max, peer_pid=creds[0] if creds else 0)
        except BaseException:
            if peer is not None:
                peer.close()
            lifeline.close()
            raise

    def _close(self) -> None:
        try:
            self._sock.close()
        finally:
            if self._on_close is not None:
                self._on_close()


def _hung_up(sock: socket.socket) -> bool:
    poller = select.poll()
    poller.register(sock.fileno(), _READ)
    return bool(poller.poll(0))


def _set_send_timeout(sock: socket.socket, deadline: Optional[float]) -> None:
    left = 0.0 if deadline is None else max(1e-6, deadline - time.monotonic())
    sec = int(left)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", sec, int((left - sec) * 1e6)))


def connect(target: str, *, mode: str = "message", timeout: Optional[float] = None, authkey: Optional[bytes] = None,
            max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> UnixgramChannel:
    if check_mode(mode) != "message":
        raise ValueError("datagram sockets carry messages only; use unix:// for a byte stream")
    authkey = check_authkey(authkey)
    addr = sockaddr("unixgram", target)
    deadline = deadline_after(timeout)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        sock.bind("")  # autobind: an abstract name the kernel picks
        nonce = secrets.token_bytes(_NONCE)
        hello = _MAGIC + _HELLO + (b"\x01" if authkey else b"\x00") + nonce
        # A full listener queue makes this wait; SO_SNDTIMEO bounds it by the deadline.
        _set_send_timeout(sock, deadline)
        try:
            sock.sendmsg([hello], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [theirs.fileno()]))], 0, addr)
        except (BlockingIOError, socket.timeout) as exc:
            raise TimeoutError(f"the listener at unixgram://{target} did not take the hello in time") from exc
        except ConnectionRefusedError as exc:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"nobody listens at unixgram://{target}") from exc
        _set_send_timeout(sock, None)
        theirs.close()
        poller = select.poll()
        poller.register(sock.fileno(), _READ)
        poller.register(mine.fileno(), _READ)
        while True:
            ready = dict(poller.poll(poll_ms(deadline)))
            if sock.fileno() in ready:
                try:
                    data, anc, _, src = sock.recvmsg(256, _ANCILLARY, _DONTWAIT | socket.MSG_CMSG_CLOEXEC)
                except (BlockingIOError, InterruptedError):
                    continue
                fds, creds = _credentials(anc)
                for fd in fds:
                    os.close(fd)
                if not src or not _admitted(creds, False):
                    continue  # not from a process of ours: ignore it
                refused = _handshake_error(data) if data[len(_MAGIC) + 1:len(_MAGIC) + 1 + _NONCE] == nonce else None
                if refused is not None:
                    raise refused
                head = _MAGIC + _ACCEPT + nonce
                if not data.startswith(head):
                    continue
                theirs_nonce = data[len(head):len(head) + _NONCE]
                mac = data[len(head) + _NONCE:]
                if authkey is None and mac:
                    raise AuthenticationError("the listener requires an authkey")
                if authkey is not None:
                    if not mac:
                        raise AuthenticationError("an authkey was given but the listener does not authenticate")
                    if not hmac.compare_digest(mac, _mac(authkey, b"server", nonce, theirs_nonce)):
                        raise AuthenticationError("the listener's authkey digest did not match")
                sock.connect(src)
                _drain(sock)
                proof = _mac(authkey, b"client", theirs_nonce, nonce) if authkey is not None else b""
                sock.send(_MAGIC + _ACK + proof)
                return UnixgramChannel(sock, mine, max_message_size=max_message_size, peer_pid=creds[0])
            if mine.fileno() in ready:
                raise ConnectionResetError(
                    errno.ECONNRESET, f"the listener at unixgram://{target} closed before accepting")
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no accept from unixgram://{target} before the timeout")
    except BaseException:
        sock.close()
        mine.close()
        theirs.close()
        raise


def listen(target: str, *, mode: str = "message", allow_other_users: bool = False, **opts: Any) -> UnixgramListener:
    if check_mode(mode) != "message":
        raise ValueError("datagram sockets carry messages only; use unix:// for a byte stream")
    opts.pop("backlog", None)  # accepted for symmetry with the other socket listeners
    addr = sockaddr("unixgram", target)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        on_close = bind(sock, addr)
    except BaseException:
        sock.close()
        raise
    return UnixgramListener(sock, f"unixgram://{target}", allow_other_users=allow_other_users,
                            on_close=on_close, **opts)


register_scheme("unixgram", connect, listen)
