"""``unix:///PATH``, ``unix://@NAME`` (Linux abstract namespace) and
``unixpacket://`` (the same with ``SOCK_SEQPACKET``, native message boundaries).

Socket files are created mode 0600 without a window where they are wider:
the socket is bound inside a private 0700 directory, tightened, then
hard-linked to its final name (which also refuses, atomically, to replace an
existing file).  Only the creating process removes the file, and only if it
is still the same inode.  Abstract sockets have no permissions, so every
accepted peer's uid is checked with ``SO_PEERCRED`` unless
``allow_other_users=True``.

A socket file whose listener was killed (SIGKILL, or SIGTERM without a
handler: no exit code runs) stays on disk.  The next listener on the same
path reaps it when its owner is provably gone: the file is a socket and a
connect() to it is refused (nobody is bound to it); anything else at the
path is left alone and the bind fails with ``FileExistsError``.  The probe
of a live stream listener is one connection that closes at once.  Abstract
names leave nothing behind: the kernel frees them with the socket."""
from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
import struct
import tempfile
from typing import Any, Callable, Optional, Tuple, Union

from ..address import check_mode, register_scheme
from ...errors import AddressError, AuthenticationError
from .names import unlink_if_same
from .packet import tune_packet_socket
from .sockets import SocketListener, check_kind, open_connection

# sizeof(sockaddr_un.sun_path) is 108 on Linux, including the terminating NUL.
MAX_PATH_BYTES = 107
_KINDS = {"unix": socket.SOCK_STREAM, "unixpacket": socket.SOCK_SEQPACKET}


#: Requested send and receive buffer of a unix:// stream socket.
STREAM_BUFFER = 4 << 20


def sockaddr(scheme: str, target: str) -> Union[str, bytes]:
    """The ``AF_UNIX`` address for a ``unix://`` target, with the length checked."""
    if target.startswith("@"):
        name = target[1:].encode()
        if not name or len(name) > MAX_PATH_BYTES - 1:
            raise AddressError(f"abstract socket name must be 1..{MAX_PATH_BYTES - 1} bytes: {target!r}")
        return b"\0" + name
    raw = os.fsencode(target)
    if len(raw) > MAX_PATH_BYTES:
        raise AddressError(
            f"UNIX socket path is {len(raw)} bytes; the kernel allows {MAX_PATH_BYTES}. "
            f"Use a shorter path or the abstract form '{scheme}://@NAME' (Linux), which has no file."
        )
    return target


def _peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _same_user(sock: socket.socket) -> None:
    uid = _peer_uid(sock)
    if uid not in (os.getuid(), 0):
        raise AuthenticationError(f"peer runs as uid {uid}, not ours ({os.getuid()}); connection closed")


def _bind_private(sock: socket.socket, path: str) -> os.stat_result:
    """Bind ``sock`` at ``path`` with mode 0600 from the first instant it is visible."""
    staging = tempfile.mkdtemp(prefix=".rpc", dir=os.path.dirname(os.path.abspath(path)))
    try:
        temp = os.path.join(staging, "s")
        if len(os.fsencode(temp)) > MAX_PATH_BYTES:
            # No room for the staging name: bind directly, then tighten.  The
            # brief window is only as wide as the caller's umask allows.
            try:
                sock.bind(path)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or not reap_stale_socket(path, sock.type):
                    raise
                sock.bind(path)
            os.chmod(path, 0o600)
        else:
            sock.bind(temp)
            os.chmod(temp, 0o600)
            try:
                os.link(temp, path)
            except FileExistsError:
                if not reap_stale_socket(path, sock.type):
                    raise
                os.link(temp, path)
        return os.stat(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def reap_stale_socket(path: str, kind: int) -> bool:
    """Remove the socket file at ``path`` if nobody is bound to it any more
    (its listener died); False, and nothing removed, otherwise."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True  # gone meanwhile: the path is free
    if not stat.S_ISSOCK(st.st_mode):
        return False
    probe = socket.socket(socket.AF_UNIX, kind)
    try:
        probe.setblocking(False)
        probe.connect(path)
    except ConnectionRefusedError:
        pass  # a socket file nobody is bound to: its listener is gone
    except OSError as exc:
        # EAGAIN: a live listener with a full backlog; EPROTOTYPE: a live socket of another kind.
        if exc.errno == errno.ENOENT:
            return True
        return False
    else:
        return False  # somebody answers
    finally:
        probe.close()
    unlink_if_same(path, st)
    return True


def bind(sock: socket.socket, addr: Union[str, bytes]) -> Optional[Callable[[], None]]:
    """Bind ``sock`` to an abstract name (bytes) or a path, the file mode 0600;
    returns what removes the file again (None for an abstract name)."""
    if isinstance(addr, bytes):
        sock.bind(addr)
        return None
    return _remover(addr, _bind_private(sock, addr))


def _remover(path: str, st: os.stat_result) -> Callable[[], None]:
    pid = os.getpid()

    def remove() -> None:
        if os.getpid() != pid:
            return  # a forked child closing its copy must not take the parent's socket away
        unlink_if_same(path, st)

    return remove


def tune_stream_socket(sock: socket.socket) -> None:
    """Deep buffers (capped by net.core.wmem_max/rmem_max): a sender may run
    further ahead, so a large message takes fewer wake-ups and a busy
    receiver's read-ahead finds more frames per read.  Only the bytes in
    flight use the memory."""
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, STREAM_BUFFER)
        except OSError:
            pass


def _make(scheme: str) -> Tuple[Callable[..., Any], Callable[..., Any]]:
    kind = _KINDS[scheme]
    tune = tune_packet_socket if kind == socket.SOCK_SEQPACKET else tune_stream_socket

    def connect(target: str, **opts: Any) -> Any:
        return open_connection(socket.AF_UNIX, kind, sockaddr(scheme, target), tune=tune, **opts)

    def listen(target: str, *, backlog: int = 64, allow_other_users: bool = False, **opts: Any) -> Any:
        check_kind(kind, check_mode(opts.get("mode", "message")))
        addr = sockaddr(scheme, target)
        sock = socket.socket(socket.AF_UNIX, kind)
        try:
            on_close = bind(sock, addr)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        check = None if allow_other_users else _same_user
        return SocketListener(
            sock, f"{scheme}://{target}", check_peer=check, tune=tune, on_close=on_close, **opts
        )

    return connect, listen


for _scheme in _KINDS:
    register_scheme(_scheme, *_make(_scheme))
