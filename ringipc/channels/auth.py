"""Connection greeting and the authkey challenge for socket transports.

Every accepted socket starts with a greeting from the listener that says
whether it demands authentication, so a client and server configured
differently fail at once with a clear :class:`AuthenticationError` instead of
misreading each other's bytes.  With an authkey both sides prove knowledge of
it (HMAC-SHA256 over fresh 32-byte nonces from both ends, so neither a replay
nor a reflection works) before a single application byte is read; nothing
from an unauthenticated peer ever reaches ``pickle``.
"""
from __future__ import annotations

import errno
import hashlib
import hmac
import os
import secrets
from typing import Optional

from ..errors import AuthenticationError
from .framing import wait_readable, write_all

_MAGIC = b"RINGIPC1"
_OPEN, _CHALLENGE, _REFUSED = b"\x00", b"\x01", b"\x02"
_OK, _FAIL = b"\x01", b"\x00"
NONCE_SIZE = 32
_DIGEST = hashlib.sha256
_MAC_SIZE = _DIGEST().digest_size


def _mac(authkey: bytes, role: bytes, first: bytes, second: bytes) -> bytes:
    # The role label keeps the server's answer from being replayable as a client's.
    return hmac.new(authkey, role + first + second, _DIGEST).digest()


def _read_exact(fd: int, n: int, deadline: Optional[float]) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None and not wait_readable(fd, deadline):
            raise TimeoutError("timed out during the connection handshake")
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            # A hang-up is not a failed proof: the peer (or a listener that
            # closed before accepting) simply went away.
            raise ConnectionResetError(errno.ECONNRESET, "the peer closed the connection during the handshake")
        buf += chunk
    return bytes(buf)


def check_authkey(authkey: object) -> Optional[bytes]:
    if authkey is None:
        return None
    if not isinstance(authkey, (bytes, bytearray)) or not authkey:
        raise TypeError("authkey must be a non-empty bytes object")
    return bytes(authkey)


def server_handshake(fd: int, authkey: Optional[bytes], deadline: Optional[float]) -> None:
    """Run the listener's side; raise :class:`AuthenticationError` if the peer fails."""
    if authkey is None:
        write_all(fd, [_MAGIC + _OPEN])
        return
    nonce = secrets.token_bytes(NONCE_SIZE)
    # One write per read on the other side: on a seqpacket socket a read
    # shorter than the packet would discard the rest of it.
    write_all(fd, [_MAGIC + _CHALLENGE])
    write_all(fd, [nonce])
    reply = _read_exact(fd, NONCE_SIZE + _MAC_SIZE, deadline)
    peer_nonce, peer_mac = reply[:NONCE_SIZE], reply[NONCE_SIZE:]
    if not hmac.compare_digest(peer_mac, _mac(authkey, b"client", nonce, peer_nonce)):
        try:
            write_all(fd, [_FAIL])
        except OSError:
            pass
        raise AuthenticationError("the peer's authkey digest did not match; connection closed")
    write_all(fd, [_OK])
    write_all(fd, [_mac(authkey, b"server", peer_nonce, nonce)])


def refuse(fd: int) -> None:
    """Tell a peer it is not admitted (e.g. wrong uid) so it fails with a clear error."""
    try:
        write_all(fd, [_MAGIC + _REFUSED])
    except OSError:
        pass


def client_handshake(fd: int, authkey: Optional[bytes], deadline: Optional[float]) -> None:
    """Run the connecting side; raise :class:`AuthenticationError` on any mismatch."""
    greeting = _read_exact(fd, len(_MAGIC) + 1, deadline)
    if greeting[: len(_MAGIC)] != _MAGIC:
        raise AuthenticationError("the listener is not a ringipc channel listener")
    kind = greeting[len(_MAGIC) :]
    if kind == _OPEN:
        if authkey is not None:
            raise AuthenticationError("an authkey was given but the listener does not authenticate")
        return
    if kind == _REFUSED:
        raise AuthenticationError("the listener does not admit this peer (for example, another user)")
    if kind != _CHALLENGE:
        raise AuthenticationError("unknown handshake from the listener")
    if authkey is None:
        raise AuthenticationError("the listener requires an authkey")
    nonce = _read_exact(fd, NONCE_SIZE, deadline)
    my_nonce = secrets.token_bytes(NONCE_SIZE)
    write_all(fd, [my_nonce + _mac(authkey, b"client", nonce, my_nonce)])
    status = _read_exact(fd, 1, deadline)
    if status != _OK:
        raise AuthenticationError("the listener rejected our authkey")
    server_mac = _read_exact(fd, _MAC_SIZE, deadline)
    if not hmac.compare_digest(server_mac, _mac(authkey, b"server", my_nonce, nonce)):
        raise AuthenticationError("the listener's authkey digest did not match")
