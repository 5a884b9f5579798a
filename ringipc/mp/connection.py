"""Drop-in replacements for multiprocessing's Pipe and Connection (wait() is in waiting.py).

Each direction of a pipe is an MPMC ring (a Connection end may be shared by
several processes, as with multiprocessing).  Next to the rings, each pair of
ends holds one UNIX socketpair that carries no data: the kernel closes a
process's socket when it dies, which is how an end learns that every copy of
its peer is gone (EOF on recv, BrokenPipeError on send); ``fileno()`` returns
the socket, so ``multiprocessing.reduction.send_handle``/``recv_handle``
(SCM_RIGHTS) work unchanged.  Because data never makes the socket readable,
``multiprocessing.connection.wait()`` only reports EOF for ring connections;
use ``ringipc.mp.waiting.wait()`` instead.

A blocked receive waits on the ring in slices of PEER_CHECK seconds and looks
at the socket between slices, so peer death is seen within that time.  A send
looks at the socket at most every PEER_CHECK seconds (and between the slices
of a wait for room), so a message costs no system call: a send within
PEER_CHECK of the peer's death may succeed, and that message is lost with the
peer, as with a socket whose peer dies after the write.
"""
from __future__ import annotations

import os
import select
import socket
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple, Type

from multiprocessing import reduction
from queue import Empty, Full

from ..core._ring import Ring
from ..core import large
from .lease import Lease, lease_of
from ..errors import BufferTooShort
from . import oob
from . import _connection_fast
from .pickling import loads
from ..core.sharedstate import keep_alive_for_child, pin_rings

if TYPE_CHECKING:
    from ..core.doorbell import Doorbell

DEFAULT_CAPACITY = 1 << 20  # per ring; Docker gives /dev/shm only 64 MiB
PEER_CHECK = 0.05
_monotonic = time.monotonic
_PEEK = socket.MSG_PEEK | socket.MSG_DONTWAIT
_HUP = select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)



def _broken_pipe() -> BrokenPipeError:
    return BrokenPipeError(32, "Broken pipe: the other end of the connection is closed")


class NonContiguousBuffer(TypeError, BufferError):
    """send_bytes() of a buffer that is not C-contiguous (a strided memoryview).

    multiprocessing refuses these too, by accident of its code: TypeError up
    to 16 KiB (or for any item size above one byte), BufferError above.  Both,
    so that a handler written for either catches it at any size."""

class Connection:
    """One end of a ringipc Pipe; the API of multiprocessing.connection.Connection."""

    # Typed as when in use.  The socket is None once closed, a ring and its
    # bound call None in a one-way end (or after close): every use is guarded
    # by _check_closed() or the _readable/_writable flags, which a type
    # checker cannot follow; the assignments of None say so where they are.
    _sock: socket.socket
    _rx: Ring
    _tx: Ring
    _tx_send: Callable[[Any, bool], None]
    _rx_recv: Callable[[bool, Optional[float]], bytes]
    _sweeper: _Sweeper  # in the creating process only: see Pipe()
    _wait_bell: Doorbell  # set by waiting.wait() when first needed, popped by close()

    def __init__(self, sock: socket.socket, rx: Optional[Ring], tx: Optional[Ring]) -> None:
        self._sock = sock
        self._rx = rx  # type: ignore[assignment]  # None in a write-only end
        self._tx = tx  # type: ignore[assignment]  # None in a read-only end
        self._setup()

    def _setup(self) -> None:
        self._unpin = pin_rings(self, self._rx, self._tx)
        self._readable = self._rx is not None
        self._writable = self._tx is not None
        self._limit = self._tx.max_message_size if self._writable else 0
        self._poller = select.poll()
        self._poller.register(self._sock, _HUP)
        self._peer_checked = -PEER_CHECK  # the first send checks
        # Bound once: the everyday send_bytes/recv_bytes call the ring directly.
        self._tx_send = self._tx.send_bytes if self._writable else None  # type: ignore[assignment]  # one-way
        self._rx_recv = self._rx.recv_bytes if self._readable else None  # type: ignore[assignment]  # one-way
        # The everyday calls in C (_connection_fast.pyx); these methods answer the rest.
        self._fast = _connection_fast.attach(self, PEER_CHECK)

    def _release_rings(self) -> None:
        _connection_fast.detach(self)
        self._rx = self._tx = self._tx_send = self._rx_recv = None  # type: ignore[assignment]  # at exit

    def __reduce__(self) -> Tuple[Callable[[Any, Optional[Ring], Optional[Ring]], Connection],
                                  Tuple[Any, Optional[Ring], Optional[Ring]]]:
        self._check_closed()
        keep_alive_for_child((self._rx, self._tx))
        return (_rebuild, (reduction.DupFd(self._sock.fileno()), self._rx, self._tx))

    # -- state ------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._sock is None

    @property
    def readable(self) -> bool:
        return self._readable

    @property
    def writable(self) -> bool:
        return self._writable

    def fileno(self) -> int:
        self._check_closed()
        return self._sock.fileno()

    def close(self) -> None:
        bell = self.__dict__.pop("_wait_bell", None)  # wait()'s doorbell (waiting.py)
        if bell is not None:
            bell.close()
        if self._sock is not None:
            try:
                self._poller.unregister(self._sock)
            except (KeyError, ValueError):
                pass
            self._sock.close()
            self._sock = None  # type: ignore[assignment]  # closed
            if self._tx is not None:
                large.sender_closed(self._tx.name, self)
            # Dropping (not closing) the rings: the creator unlinks a ring's
            # name when its last handle here goes, never while another end
            # in this process (or a child being spawned) still needs it.
            _connection_fast.detach(self)
            self._rx = self._tx = self._tx_send = self._rx_recv = None  # type: ignore[assignment]  # closed
            self._unpin()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()

    def __del__(self, _close: Callable[[int], None] = os.close) -> None:
        # As multiprocessing's Connection: collected without close() is not an
        # error.  Only C-level calls here: at interpreter teardown the socket
        # module's globals may already be gone.
        sock = self.__dict__.get("_sock")
        if sock is not None:
            fd = sock.detach()
            if fd >= 0:
                _close(fd)

    def _check_closed(self) -> None:
        if self._sock is None:
            raise OSError("handle is closed")

    def _check_readable(self) -> None:
        if not self._readable:
            raise OSError("connection is write-only")

    def _check_writable(self) -> None:
        if not self._writable:
            raise OSError("connection is read-only")

    def _peer_gone(self) -> bool:
        """True once every copy of the other end is closed (or its process died)."""
        try:
            return self._sock.recv(1, _PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    # -- sending ------------------------------------------------------------------
    def send_bytes(self, buf: Any, offset: int = 0, size: Optional[int] = None) -> None:
        """Send a bytes-like object (or the slice [offset:offset+size] of it) as one message."""
        if self._sock is None or not self._writable:
            self._check_closed()
            self._check_writable()
        if offset == 0 and size is None and type(buf) is bytes:
            # The everyday call, inline: a whole message that fits the ring and
            # cannot look like a side-segment reference (those start with NUL).
            if buf and buf[0] and len(buf) <= self._limit:
                now = _monotonic()
                if now - self._peer_checked >= PEER_CHECK:
                    self._check_peer()
                try:
                    self._tx_send(buf, False)
                    return
                except Full:
                    return self._send_message(buf)
            return self._send(buf)
        with memoryview(buf) as m:
            if not m.c_contiguous:
                raise NonContiguousBuffer(f"send_bytes needs a C-contiguous buffer, not a strided {type(buf).__name__}")
            if m.format != "B":  # byte offsets, and data[0] must be an int
                m = m.cast("B")
            n = m.nbytes
            if offset < 0:
                raise ValueError("offset is negative")
            if n < offset:
                raise ValueError("buffer length < offset")
            if size is None:
                size = n - offset
            elif size < 0:
                raise ValueError("size is negative")
            elif offset + size > n:
                raise ValueError("buffer length < offset + size")
            self._send(m[offset:offset + size])

    def send(self, obj: Any) -> None:
        """Send a picklable object (its large buffers out of band: oob.py)."""
        self._check_closed()
        self._check_writable()
        data = oob.encode(obj)
        if type(data) is not oob.Frame:
            return self._send(data)
        self._send_frame(data)

    def _send_frame(self, data: oob.Frame) -> None:
        self._check_peer()
        # Large buffers go once into a slab, the ring carries a reference (large.py).
        self._send_message(large.export(self._tx.name, data, self))

    def _check_peer(self) -> None:
        # Sending into a pipe whose reader is gone must fail, as a socket
        # write would.  The check costs a poll(2), so a send makes it at most
        # every PEER_CHECK seconds (the clock is read without a system call);
        # a send that has to wait for room checks between its slices.  A
        # message sent in the window after the peer died is lost with it.
        now = time.monotonic()
        if now - self._peer_checked < PEER_CHECK:
            return
        self._peer_checked = now
        if self._poller.poll(0) and self._peer_gone():
            raise _broken_pipe()

    def _send(self, data: Any) -> None:
        self._check_peer()
        # Only messages starting with NUL can look like a side-segment reference.
        if len(data) > self._limit or (data and not data[0] and large.is_reference(data)):
            data = large.export(self._tx.name, data, self)
        self._send_message(data)

    def _send_message(self, data: Any) -> None:
        try:
            self._tx.send_bytes(data, False)
            return
        except Full:
            pass
        while True:
            try:
                self._tx.send_bytes(data, True, PEER_CHECK)
                return
            except Full:
                if self._peer_gone():
                    raise _broken_pipe() from None

    # -- receiving ----------------------------------------------------------------
    def _recv_message(self, timeout: Optional[float] = None) -> bytes:
        try:
            # Waiting straight away (not trying non-blocking first) spares
            # raising queue.Empty on every receive that finds the ring empty.
            return self._rx_recv(True, PEER_CHECK)
        except Empty:
            return self._recv_wait(timeout)

    def _recv(self, timeout: Optional[float] = None) -> bytes:
        # _recv_message's body, inline: recv_bytes is the everyday call.
        try:
            data = self._rx_recv(True, PEER_CHECK)
        except Empty:
            data = self._recv_wait(timeout)
        if data and not data[0] and large.is_reference(data):
            return large.load_bytes(data)
        return data

    def _recv_wait(self, timeout: Optional[float]) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            slice_ = PEER_CHECK if deadline is None else min(PEER_CHECK, max(deadline - time.monotonic(), 0))
            try:
                return self._rx.recv_bytes(True, slice_)
            except Empty:
                pass
            if self._peer_gone():
                # The peer wrote before it closed: drain what it left first.
                try:
                    return self._rx.recv_bytes(False)
                except Empty:
                    raise EOFError from None
            if deadline is not None and time.monotonic() >= deadline:
                raise Empty

    def recv_bytes(self, maxlength: Optional[int] = None) -> bytes:
        """Receive one message as bytes; EOFError once the peer is closed and drained."""
        if self._sock is None or not self._readable:
            self._check_closed()
            self._check_readable()
        if maxlength is None:
            return self._recv()
        if maxlength < 0:
            raise ValueError("negative maxlength")
        data = self._recv()
        if maxlength is not None and len(data) > maxlength:
            # As multiprocessing: the end stops reading (closes if it cannot write).
            if self._writable:
                self._readable = False
            else:
                self.close()
            raise OSError("bad message length")
        return data

    def recv(self) -> Any:
        """Receive one pickled object."""
        self._check_closed()
        self._check_readable()
        data = self._recv_message()
        if data and not data[0]:
            if large.is_reference(data):
                return large.load(data, oob.decode_payload)  # straight from the slab: one copy out
            if oob.is_frame(data):
                return oob.decode(data)
        return loads(data)

    def recv_lease(self) -> Lease[Any]:
        """Receive one object without copying its large buffers: they look
        into shared memory until the lease is released (see lease.py)."""
        self._check_closed()
        self._check_readable()
        return lease_of(self._recv_message())

    def recv_bytes_into(self, buf: Any, offset: int = 0) -> int:
        """Receive one message into a writable buffer at byte `offset`; returns its length.

        Raises BufferTooShort (message in args[0]) if it does not fit."""
        self._check_closed()
        self._check_readable()
        with memoryview(buf) as m:
            bytesize = m.itemsize * len(m)
            if offset < 0:
                raise ValueError("negative offset")
            if offset > bytesize:
                raise ValueError("offset too large")
            data = self._recv()
            size = len(data)
            if bytesize < offset + size:
                raise BufferTooShort(data)
            with m.cast("B") as flat:
                flat[offset:offset + size] = data
            return size

    def poll(self, timeout: Optional[float] = 0.0) -> bool:
        """Whether a message (or EOF) can be received, waiting up to `timeout` seconds."""
        self._check_closed()
        self._check_readable()
        return self._poll(timeout)

    def _poll(self, timeout: Optional[float]) -> bool:
        rx = self._rx
        if rx.poll(0):
            return True
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        while True:
            if self._peer_gone():
                return True
            if deadline is None:
                slice_ = PEER_CHECK
            else:
                slice_ = min(PEER_CHECK, deadline - time.monotonic())
                if slice_ <= 0:
                    return False
            if rx.poll(slice_):
                return True

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"rx={getattr(self._rx, 'name', None)} tx={getattr(self._tx, 'name', None)}"
        return f"<ringipc.Connection {state}>"


def _rebuild(dupfd: Any, rx: Optional[Ring], tx: Optional[Ring]) -> Connection:
    return Connection(socket.socket(fileno=dupfd.detach()), rx, tx)


class _Sweeper:
    """Held by both ends in the creating process: when both are gone (or at
    exit) the side segments their rings left behind are removed."""

    def __init__(self, *rings: Ring) -> None:
        for ring in rings:
            large.sweep_when_done(self, ring.name)


def Pipe(duplex: bool = True, *, capacity: int = DEFAULT_CAPACITY) -> Tuple[Connection, Connection]:
    """Two Connections; with duplex=False the first only receives and the second only sends."""
    s1, s2 = socket.socketpair()
    try:
        a_to_b = Ring(capacity, "mpmc")
        if not duplex:
            ends = Connection(s1, a_to_b, None), Connection(s2, None, a_to_b)
            sweeper = _Sweeper(a_to_b)
        else:
            b_to_a = Ring(capacity, "mpmc")
            ends = Connection(s1, b_to_a, a_to_b), Connection(s2, a_to_b, b_to_a)
            sweeper = _Sweeper(a_to_b, b_to_a)
    except BaseException:
        s1.close()
        s2.close()
        raise
    for end in ends:
        end._sweeper = sweeper
    return ends
