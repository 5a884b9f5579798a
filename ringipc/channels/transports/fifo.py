"""``fifo:///PATH``: channels over named pipes.

The listener creates PATH (mode 0600) as a rendezvous FIFO and removes it on
close.  A FIFO carries one direction and has no notion of a connection, so a
connecting process makes its own pair of private FIFOs next to PATH, names
them in one fixed-size request written to PATH (writes of at most PIPE_BUF
bytes are atomic, so requests from several clients never interleave), and
both sides confirm through the new FIFOs before any data flows.  The client
then unlinks its pair: from that point nothing is on disk for the connection,
and a dead peer shows up as EOF, exactly as on an anonymous pipe.

Every wait also watches the other side's liveness (POLLERR on a write end
with no reader), so a peer that dies during the rendezvous ends the wait.

A listener killed before it could remove PATH (SIGKILL, or SIGTERM without
a handler) leaves the FIFO on disk.  A live listener always holds its read
end open, so a FIFO at PATH that nobody reads (opening it for writing
fails with ``ENXIO``) is provably abandoned: the next listener on PATH
removes it and makes its own.  Anything else at PATH is left alone
(``FileExistsError``).  A connector killed during the rendezvous leaves its
pair, ``PATH.TOKEN.up``/``.down``: a listener removes it when it finds the
connector gone on answering its request, and a new listener on PATH removes
every pair whose ``.down`` nobody reads (a live connector reads its own
from before ``.up`` exists until both are unlinked)."""
from __future__ import annotations

import errno
import os
import re
import secrets
import select
import stat
import time
from typing import Any, Optional, Tuple

from ..address import check_mode, register_scheme
from ..bytestream import ByteStream
from ..channel import DEFAULT_MAX_MESSAGE_SIZE, BaseListener, deadline_after
from ...errors import AddressError
from ..framing import poll_ms, wait_readable
from .names import unlink_if_same
from .stream import StreamChannel

_MAGIC = b"RINGIPC-FIFO1 "
_REQUEST_SIZE = 64  # fixed, and far below PIPE_BUF, so one write is one whole request
_TOKEN = re.compile(rb"[0-9a-f]{32}")
_ACK, _READY = b"A", b"R"
_PAIR = re.compile(r"([0-9a-f]{32})\.(?:up|down)")
_GONE = select.POLLERR | select.POLLHUP


def _pair_paths(path: str, token: str) -> Tuple[str, str]:
    return f"{path}.{token}.up", f"{path}.{token}.down"


def _blocking(fd: int) -> int:
    os.set_blocking(fd, True)
    return fd


def _wait_either(read_fd: int, watch_fd: int, deadline: Optional[float]) -> str:
    """Wait until ``read_fd`` is readable ("ready"), ``watch_fd`` loses its reader ("gone"), or timeout."""
    poller = select.poll()
    poller.register(read_fd, select.POLLIN | select.POLLHUP)
    poller.register(watch_fd, _GONE)
    while True:
        events = dict(poller.poll(poll_ms(deadline)))
        # Data first: a fast peer may already have answered *and* gone away,
        # and its answer still counts.
        if events.get(read_fd, 0) & select.POLLIN:
            return "ready"
        if events.get(watch_fd, 0) & _GONE:
            return "gone"
        if read_fd in events:
            return "ready"  # hang-up: the read that follows sees EOF and gives up
        if deadline is not None and time.monotonic() >= deadline:
            return "timeout"


def _reap_stale_fifo(path: str) -> bool:
    """Remove the FIFO at ``path`` if no listener reads it; whether the path is free."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    if not stat.S_ISFIFO(st.st_mode):
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            return False
    else:
        os.close(fd)
        return False  # somebody reads it: a live listener
    unlink_if_same(path, st)
    return True


def _reap_pair(path: str, token: str) -> None:
    """Remove a connector's FIFO pair if its connector is gone (nobody reads .down)."""
    up, down = _pair_paths(path, token)
    if os.path.lexists(down) and not _reap_stale_fifo(down):
        return  # read: a connector in its handshake
    try:
        st = os.lstat(up)
    except FileNotFoundError:
        return
    if stat.S_ISFIFO(st.st_mode):
        unlink_if_same(up, st)


def _reap_pairs(path: str) -> None:
    """The pairs killed connectors left next to ``path`` (PATH.TOKEN.up/.down)."""
    directory, base = os.path.split(os.path.abspath(path))
    try:
        names = os.listdir(directory)
    except OSError:
        return
    tokens = {m.group(1) for n in names if n.startswith(base + ".") and (m := _PAIR.fullmatch(n[len(base) + 1:]))}
    for token in tokens:
        _reap_pair(path, token)


def _wrap(rfd: int, wfd: int, mode: str, max_message_size: Optional[int]) -> Any:
    if mode == "stream":
        return ByteStream(_blocking(rfd), _blocking(wfd))
    return StreamChannel(_blocking(rfd), _blocking(wfd), max_message_size=max_message_size)


def connect(target: str, *, mode: str = "message", timeout: Optional[float] = None,
            max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> Any:
    check_mode(mode)
    deadline = deadline_after(timeout)
    token = secrets.token_hex(16)
    up, down = _pair_paths(target, token)
    fds = []
    try:
        # .down first, read at once, and unlinked last: while .up exists, a
        # live connector reads .down (what _reap_pair relies on).
        os.mkfifo(down, 0o600)
        down_r = os.open(down, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        fds.append(down_r)
        os.mkfifo(up, 0o600)
        try:
            req = os.open(target, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ENXIO, errno.ENOENT):
                raise ConnectionRefusedError(errno.ECONNREFUSED, f"no FIFO listener at {target}") from exc
            raise
        fds.append(req)
        if not stat.S_ISFIFO(os.fstat(req).st_mode):
            # Never write a request into something else (a regular file would be overwritten).
            raise AddressError(f"{target} is not a FIFO")
        try:
            os.write(req, (_MAGIC + token.encode()).ljust(_REQUEST_SIZE, b" "))
        except BlockingIOError as exc:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"FIFO listener at {target} has a full backlog") from exc
        state = _wait_either(down_r, req, deadline)
        if state == "timeout":
            raise TimeoutError(f"FIFO listener at {target} did not accept before the timeout")
        if state == "gone" or os.read(down_r, 1) != _ACK:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"FIFO listener at {target} went away")
        try:
            up_w = os.open(up, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:  # ENXIO: the listener acknowledged, then gave up
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"FIFO listener at {target} went away") from exc
        fds.append(up_w)
        os.write(up_w, _READY)
        fds.remove(down_r)
        fds.remove(up_w)
        return _wrap(down_r, up_w, mode, max_message_size)
    finally:
        for fd in fds:
            os.close(fd)
        for p in (up, down):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


class FifoListener(BaseListener):
    def __init__(self, path: str, *, mode: str = "message",
                 max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        super().__init__()
        self._mode = check_mode(mode)
        self._max = max_message_size
        self._path = path
        self.address = f"fifo://{path}"
        self._pid = os.getpid()
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:
            if not _reap_stale_fifo(path):
                raise
            os.mkfifo(path, 0o600)
        try:
            os.chmod(path, 0o600)
            self._stat = os.stat(path)
            self._req = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            # Holding a write end ourselves keeps the FIFO from reporting
            # hang-up forever once the first client has come and gone.
            self._keep = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except BaseException:
            os.unlink(path)
            raise
        _reap_pairs(path)

    def fileno(self) -> int:
        self._check_open()
        return self._req

    def accept(self, timeout: Optional[float] = None) -> Any:
        """Wait for a client's request and complete its rendezvous; requests from
        clients that have given up in the meantime are skipped."""
        self._check_open()
        deadline = deadline_after(timeout)
        while True:
            if not wait_readable(self._req, deadline):
                raise TimeoutError(f"no connection on {self.address} before the timeout")
            try:
                request = os.read(self._req, _REQUEST_SIZE)
            except BlockingIOError:
                continue
            channel = self._answer(request, deadline)
            if channel is not None:
                return channel

    def _answer(self, request: bytes, deadline: Optional[float]) -> Any:
        token = request[len(_MAGIC):].rstrip(b" ")
        if not request.startswith(_MAGIC) or not _TOKEN.fullmatch(token):
            return None  # not a well-formed request: ignore it, never act on its contents
        up, down = _pair_paths(self._path, token.decode())
        fds = []
        try:
            try:
                up_r = os.open(up, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                fds.append(up_r)
                down_w = os.open(down, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                fds.append(down_w)
                if not all(stat.S_ISFIFO(os.fstat(fd).st_mode) for fd in fds):
                    return None  # a request naming anything but FIFOs is not acted on
                os.write(down_w, _ACK)
            except OSError:
                _reap_pair(self._path, token.decode())
                return None  # the client gave up (its FIFOs are gone or unread)
            state = _wait_either(up_r, down_w, deadline)
            if state == "timeout":
                raise TimeoutError(f"client on {self.address} did not complete the rendezvous in time")
            if state == "gone" or os.read(up_r, 1) != _READY:
                return None
            fds.clear()
            return _wrap(up_r, down_w, self._mode, self._max)
        finally:
            for fd in fds:
                os.close(fd)

    def _close(self) -> None:
        os.close(self._req)
        os.close(self._keep)
        if os.getpid() != self._pid:
            return  # a forked child must not remove the parent's FIFO
        unlink_if_same(self._path, self._stat)


def listen(target: str, **opts: Any) -> "FifoListener":
    return FifoListener(target, **opts)


register_scheme("fifo", connect, listen)
