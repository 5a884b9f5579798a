"""``udp://HOST:PORT``: channels over UDP datagrams.

UDP keeps message boundaries and nothing else: a datagram may be lost,
duplicated or reordered (on loopback only when a receive buffer overflows;
on a network, any time).  A ``udp://`` channel delivers **at most once, in
order**: every datagram carries a sequence number, and one that is not newer
than the last delivered (a duplicate, a replay, or one overtaken by a later
one) is dropped.  What is lost stays lost: there is no retransmission, so
use a timeout on every receive and put acknowledgements in your own
protocol where loss matters.

Bytes unless an authkey is given.  Without ``authkey`` a channel carries
``send_bytes``/``recv_bytes`` only; ``send``/``recv`` (pickled objects)
raise :class:`~ringipc.errors.AuthenticationError`, because unpickling a
datagram anybody on the network could have sent runs the sender's code.
With ``authkey`` the handshake derives a key per connection and direction
from it and both nonces, and every datagram is signed (keyed BLAKE2b, 16
bytes, over header and payload): a datagram that fails the check, forged,
altered or from another connection, is dropped and counted in
``channel.forged``; a stale one in ``channel.stale``.  Objects may then
travel both ways.

Handshake.  The connector sends a hello (32-byte nonce) to HOST:PORT every
so often until it is answered or its timeout passes; ``accept()`` answers
from the listening socket with the port of a new socket it made for that
peer (and, with an authkey, an HMAC proving the key); the connector then
talks to that port, so each channel is a connected pair of sockets and one
listener serves many peers.  A listener answers a repeated hello again, on
its next ``accept()``.  UDP cannot tell that nobody listens: ``connect``
to a silent port waits for its timeout (so give it one).  With an authkey the connector proves the key with
its first signed datagram: ``accept()`` may return a channel for a peer
that cannot, and nothing such a peer sends is ever delivered.

End of file: ``close()`` sends an end-of-file datagram (twice); if both are
lost, or the peer dies, only a timeout tells.  A send after the peer's
socket is gone raises ``BrokenPipeError`` and a receive ``EOFError`` when
the kernel has learnt it (ICMP port unreachable, usual on loopback).

Sizes: the largest UDP payload is 65,507 bytes over IPv4 (65,527 over
IPv6); a channel's ``transport_limit`` is that less its 16-byte header and,
when signed, the 16-byte signature, and a longer message raises
``MessageTooLarge`` before anything is sent.  Datagrams over a link's MTU
are fragmented by IP, and losing any fragment loses the datagram.  Both
socket buffers ask for 4 MiB (capped by ``net.core.rmem_max``/``wmem_max``).
Listeners bind to loopback unless given a host."""
from __future__ import annotations

import errno
import hashlib
import hmac
import secrets
import socket
import struct
import time
from typing import Any, Dict, Optional, Tuple, Union

from ..address import check_mode, register_scheme
from ..auth import _mac, check_authkey
from ..channel import DEFAULT_MAX_MESSAGE_SIZE, BaseChannel, BaseListener, deadline_after, over_limit
from ...errors import AddressError, AuthenticationError, FrameError, MessageTooLarge
from ..framing import wait_readable
from .tcp import split_host_port

_HEADER = struct.Struct("<B7xQ")  # tag, 7 zero bytes, sequence number
HEADER_SIZE = _HEADER.size
_DATA, _EOF = 1, 2
SIGNATURE_SIZE = 16
MAX_PAYLOAD = {socket.AF_INET: 65507, socket.AF_INET6: 65527}
BUFFER = 4 << 20
_MAGIC = b"RGUDP001"
_HELLO, _ACCEPT, _REFUSE = b"H", b"A", b"R"
_NONCE = 32
_PORT = struct.Struct(">H")
_FIRST_RESEND, _MAX_RESEND = 0.05, 1.0


def _session_keys(authkey: bytes, client_nonce: bytes, server_nonce: bytes) -> Tuple[bytes, bytes]:
    """(connector-to-listener key, listener-to-connector key) for one connection."""
    base = hmac.new(authkey, b"ringipc udp session" + client_nonce + server_nonce, hashlib.sha256).digest()
    return (hmac.new(base, b"up", hashlib.sha256).digest(), hmac.new(base, b"down", hashlib.sha256).digest())


def _tune(sock: socket.socket) -> None:
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, BUFFER)
        except OSError:
            pass


class UdpChannel(BaseChannel):
    def __init__(self, sock: socket.socket, *, send_key: Optional[bytes] = None, recv_key: Optional[bytes] = None,
                 max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._sock = sock
        sock.setblocking(True)
        self._send_key, self._recv_key = send_key, recv_key
        self._sig = SIGNATURE_SIZE if send_key is not None else 0
        self.transport_limit = MAX_PAYLOAD.get(sock.family, 65507) - HEADER_SIZE - self._sig
        self.signed = send_key is not None
        self._send_seq = 0
        self._recv_seq = 0
        self.forged = 0  # datagrams dropped because their signature did not check
        self.stale = 0  # datagrams dropped as duplicates or overtaken
        self._eof = False
        self._buf = bytearray(65536)
        self._view = memoryview(self._buf)
        super().__init__(max_message_size)

    def fileno(self) -> int:
        """The socket: readable when a datagram waits.  A datagram that is then
        dropped (forged or stale) makes it readable without a message."""
        self._check_open()
        return self._sock.fileno()

    # --- objects only when signed ------------------------------------------------------------
    def send(self, obj: Any) -> None:
        self._check_open()
        if not self.signed:
            raise AuthenticationError(
                "udp:// carries pickled objects only with an authkey (the peer could not safely unpickle "
                "them); use send_bytes, or connect and listen with authkey=")
        BaseChannel.send(self, obj)

    def recv(self, timeout: Optional[float] = None) -> Any:
        self._check_open()
        if not self.signed:
            raise AuthenticationError(
                "udp:// refuses to unpickle unsigned datagrams: anybody who can reach the port could run "
                "code here. Use recv_bytes, or connect and listen with authkey=")
        return BaseChannel.recv(self, timeout)

    # --- wire ----------------------------------------------------------------------------------
    def _signature(self, key: bytes, *parts: Any) -> bytes:
        h = hashlib.blake2b(key=key[:64], digest_size=SIGNATURE_SIZE)
        for part in parts:
            h.update(part)
        return h.digest()

    def _datagram(self, tag: int, view: Union[bytes, memoryview]) -> bytes:
        self._send_seq += 1
        header = _HEADER.pack(tag, self._send_seq)
        if self._send_key is None:
            return header + view
        return b"".join((header, view, self._signature(self._send_key, header, view)))

    def _send_message(self, view: memoryview) -> None:
        try:
            self._sock.send(self._datagram(_DATA, view))
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                raise MessageTooLarge(f"{len(view)}-byte datagram refused by the kernel: {exc.strerror}") from exc
            if exc.errno in (errno.ECONNREFUSED, errno.ENOTCONN):
                raise BrokenPipeError(errno.EPIPE, "the peer's socket is gone (port unreachable)") from exc
            raise

    def _accept_datagram(self, n: int, limit: Optional[int]) -> Optional[memoryview]:
        """The payload of the ``n``-byte datagram in the buffer, or None if it
        is dropped (forged, stale, end-of-file: which sets ``_eof``)."""
        view = self._view
        if n < HEADER_SIZE + self._sig:
            if self.signed:
                self.forged += 1
                return None
            raise FrameError(f"a {n}-byte datagram is shorter than ringipc's header; it was discarded")
        tag, seq = _HEADER.unpack_from(view)
        if view[1:8] != bytes(7) or tag not in (_DATA, _EOF):
            if self.signed:
                self.forged += 1
                return None
            raise FrameError("a datagram without ringipc's header arrived; it was discarded")
        end = n - self._sig
        if self.signed:
            mine = self._signature(self._recv_key, view[:HEADER_SIZE], view[HEADER_SIZE:end])  # type: ignore[arg-type]  # signed: a key
            if not hmac.compare_digest(mine, view[end:n]):
                self.forged += 1
                return None
        if seq <= self._recv_seq:
            self.stale += 1
            return None
        self._recv_seq = seq
        if tag == _EOF:
            self._eof = True
            return None
        payload = view[HEADER_SIZE:end]
        if limit is not None and len(payload) > limit:
            raise over_limit(len(payload), limit)
        return payload

    def _next(self, limit: Optional[int], deadline: Optional[float]) -> memoryview:
        while True:
            if self._eof:
                raise EOFError("the peer closed the channel")
            if deadline is not None and not wait_readable(self._sock.fileno(), deadline):
                raise TimeoutError("timed out waiting for the peer")
            try:
                n = self._sock.recv_into(self._buf, len(self._buf), 0 if deadline is None else socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionRefusedError:
                self._eof = True
                raise EOFError("the peer's socket is gone (port unreachable)") from None
            payload = self._accept_datagram(n, limit)
            if payload is not None:
                return payload

    def _recv_message(self, limit: Optional[int], deadline: Optional[float]) -> bytes:
        return bytes(self._next(limit, deadline))

    def _poll(self, deadline: Optional[float]) -> bool:
        # Datagrams a receive would drop are taken off here, so that True means a message or EOF.
        while True:
            if self._eof:
                return True
            if not wait_readable(self._sock.fileno(), deadline):
                return False
            try:
                n = self._sock.recv_into(self._buf, len(self._buf), socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionRefusedError:
                self._eof = True
                return True
            seq = self._recv_seq
            try:
                kept = self._accept_datagram(n, None)
            except FrameError:
                return True  # the receive reports it
            if kept is not None:
                self._recv_seq = seq  # only peeked: the receive checks it again
                return True
            self._sock.recv_into(self._buf, 1, socket.MSG_DONTWAIT)  # dropped, or an EOF now remembered

    def _close(self) -> None:
        for _ in range(2):  # twice: one may be lost
            try:
                self._sock.send(self._datagram(_EOF, b""), socket.MSG_DONTWAIT)
            except OSError:
                break
        self._sock.close()


def _split(target: str) -> Tuple[str, int]:
    try:
        return split_host_port(target)
    except AddressError:
        raise AddressError(f"udp address must be udp://HOST:PORT or udp://[V6]:PORT, got udp://{target}") from None


def _resolve(host: str, port: int, passive: bool) -> Tuple[Any, ...]:
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_DGRAM, 0, socket.AI_PASSIVE if passive else 0)
    if not infos:
        raise AddressError(f"cannot resolve {host!r}")
    return infos[0]


class UdpListener(BaseListener):
    def __init__(self, sock: socket.socket, address: str, *, authkey: Optional[bytes] = None,
                 max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        super().__init__()
        self._sock = sock
        sock.setblocking(False)
        self.address = address
        self._authkey = check_authkey(authkey)
        self._max = max_message_size
        self._answered: Dict[bytes, Tuple[bytes, float]] = {}  # client nonce -> (accept datagram, when): a repeated hello is answered again

    def fileno(self) -> int:
        self._check_open()
        return self._sock.fileno()

    def accept(self, timeout: Optional[float] = None) -> UdpChannel:
        self._check_open()
        deadline = deadline_after(timeout)
        while True:
            if not wait_readable(self._sock.fileno(), deadline):
                raise TimeoutError(f"no connection on {self.address} before the timeout")
            try:
                data, addr = self._sock.recvfrom(256)
            except (BlockingIOError, InterruptedError, ConnectionRefusedError):
                continue
            if len(data) != len(_MAGIC) + 2 + _NONCE or not data.startswith(_MAGIC + _HELLO) or data[len(_MAGIC) + 1] not in (0, 1):
                continue  # not a ringipc hello
            nonce, wants_auth = data[len(_MAGIC) + 2:], data[len(_MAGIC) + 1] == 1
            now = time.monotonic()
            self._answered = {k: v for k, v in self._answered.items() if now - v[1] < 60}
            if nonce in self._answered:
                self._reply(self._answered[nonce][0], addr)
                continue
            if self._authkey is not None and not wants_auth:
                self._reply(_MAGIC + _REFUSE + nonce + b"the listener requires an authkey", addr)
                raise AuthenticationError(f"a peer at {addr[0]}:{addr[1]} gave no authkey; refused")
            peer = socket.socket(self._sock.family, socket.SOCK_DGRAM)
            try:
                _tune(peer)
                peer.bind((self._sock.getsockname()[0], 0) + tuple(self._sock.getsockname()[2:]))
                peer.connect(addr)
                mine = secrets.token_bytes(_NONCE)
                port = _PORT.pack(peer.getsockname()[1])
                proof = _mac(self._authkey, b"server", nonce, mine + port) if self._authkey is not None else b""
                answer = _MAGIC + _ACCEPT + nonce + mine + port + proof
                self._answered[nonce] = (answer, now)
                self._reply(answer, addr)
                if self._authkey is not None:
                    up, down = _session_keys(self._authkey, nonce, mine)
                    return UdpChannel(peer, send_key=down, recv_key=up, max_message_size=self._max)
                return UdpChannel(peer, max_message_size=self._max)
            except BaseException:
                peer.close()
                raise

    def _reply(self, datagram: bytes, addr: Any) -> None:
        try:
            self._sock.sendto(datagram, addr)
        except OSError:
            pass  # the connector will ask again

    def _close(self) -> None:
        self._sock.close()


def connect(target: str, *, mode: str = "message", timeout: Optional[float] = None, authkey: Optional[bytes] = None,
            max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> UdpChannel:
    if check_mode(mode) != "message":
        raise ValueError("UDP carries datagrams only; use tcp:// for a byte stream")
    authkey = check_authkey(authkey)
    host, port = _split(target)
    family, _, _, _, sockaddr = _resolve(host, port, passive=False)
    deadline = deadline_after(timeout)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        _tune(sock)
        # Not connected while the handshake runs: the listener's new socket may
        # send before we have connected to it, and a socket connected to the
        # listening port would refuse that datagram.
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        nonce = secrets.token_bytes(_NONCE)
        hello = _MAGIC + _HELLO + (b"\x01" if authkey else b"\x00") + nonce
        resend = _FIRST_RESEND
        while True:
            try:
                sock.sendto(hello, sockaddr)
            except ConnectionRefusedError:
                pass  # an earlier hello was refused; keep asking until the timeout
            wait_until = time.monotonic() + resend
            if deadline is not None:
                wait_until = min(wait_until, deadline)
            resend = min(resend * 2, _MAX_RESEND)
            answer = None
            while wait_readable(sock.fileno(), wait_until):
                try:
                    data, src = sock.recvfrom(256, socket.MSG_DONTWAIT)
                except (BlockingIOError, InterruptedError, ConnectionRefusedError):
                    continue
                if src[1] != sockaddr[1]:
                    continue  # not from the listening port
                if data.startswith(_MAGIC + _REFUSE + nonce):
                    raise AuthenticationError(data[len(_MAGIC) + 1 + _NONCE:].decode("utf-8", "replace"))
                if data.startswith(_MAGIC + _ACCEPT + nonce):
                    answer = data[len(_MAGIC) + 1 + _NONCE:]
                    break
            if answer is not None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no answer from udp://{target} before the timeout")
        theirs, peer_port, proof = answer[:_NONCE], answer[_NONCE:_NONCE + 2], answer[_NONCE + 2:]
        if len(theirs) != _NONCE or len(peer_port) != 2:
            raise AuthenticationError(f"udp://{target} answered with something that is not a ringipc accept")
        if authkey is None and proof:
            raise AuthenticationError("the listener requires an authkey")
        if authkey is not None:
            if not proof:
                raise AuthenticationError("an authkey was given but the listener does not authenticate")
            if not hmac.compare_digest(proof, _mac(authkey, b"server", nonce, theirs + peer_port)):
                raise AuthenticationError("the listener's authkey digest did not match")
        sock.connect((sockaddr[0], _PORT.unpack(peer_port)[0]) + tuple(sockaddr[2:]))
        if authkey is not None:
            up, down = _session_keys(authkey, nonce, theirs)
            return UdpChannel(sock, send_key=up, recv_key=down, max_message_size=max_message_size)
        return UdpChannel(sock, max_message_size=max_message_size)
    except BaseException:
        sock.close()
        raise


def listen(target: str, *, mode: str = "message", authkey: Optional[bytes] = None, **opts: Any) -> UdpListener:
    if check_mode(mode) != "message":
        raise ValueError("UDP carries datagrams only; use tcp:// for a byte stream")
    opts.pop("backlog", None)
    opts.pop("handshake_timeout", None)  # accept() takes one datagram: nothing for a peer to hold
    host, port = _split(target)
    family, _, _, _, sockaddr = _resolve(host, port, passive=True)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        _tune(sock)
        sock.bind(sockaddr)
        bound = sock.getsockname()
    except BaseException:
        sock.close()
        raise
    shown = f"[{bound[0]}]" if family == socket.AF_INET6 else bound[0]
    return UdpListener(sock, f"udp://{shown}:{bound[1]}", authkey=authkey, **opts)


register_scheme("udp", connect, listen)
