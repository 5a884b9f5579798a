"""Byte-stream mode on the shared-memory ring: pipe semantics, file objects.

A writer cuts what it is given into records of at most ``max_message_size``
bytes and appends them to a ring; the reader hands them out in whatever
chunking it is asked for.  The unread tail of a record stays in the reader's
own buffer, so a stream has **one reader** (like a pipe's read end: a second
process reading the same ring would get whole records in between).  Several
writers are allowed; each ``write()`` of at most ``max_message_size`` bytes
reaches the reader contiguous (the ring's counterpart of ``PIPE_BUF``).

End-of-file and a dead peer come from a UNIX socketpair that carries no data,
the same trick as :mod:`ringipc.mp.connection`: the kernel closes a process's
socket when it exits or is killed, so the reader sees end-of-file once every
copy of the writer end is closed *and* the ring is drained, and a writer gets
``BrokenPipeError`` once every copy of the reader end is gone.  A writer killed
mid-stream therefore reads as end-of-file after the bytes it committed, as
with a pipe.  A blocked read or write looks at the socket every PEER_CHECK
seconds at most (a read starts at FIRST_SLICE), so a death is noticed within
that time.  Closing an end in one process never ends the stream for the
other copies (``Ring.shutdown`` would), which keeps the fork idiom "parent
closes its copy of the child's end" working.

The ends have no ``fileno()``: the socket only becomes readable at the peer's
death, never when bytes arrive, and a descriptor that lies to ``select`` is
worse than none.  Use :meth:`RingStream.poll`.
"""
from __future__ import annotations

import io
import select
import socket
import time
from typing import Any, Callable, Final, NoReturn, Optional, Tuple, Union, overload
from multiprocessing import reduction
from queue import Empty, Full

from ._ring import RECOVERY_AFTER, Ring
from ..errors import BufferTooShort
from .sharedstate import keep_alive_for_child, pin_rings

DEFAULT_CAPACITY = 1 << 20
PEER_CHECK = 0.05
FIRST_SLICE = 0.001
# MPMC so that several writer processes may share a stream, as with a pipe,
# and a creator that wrote first can hand writing to a child: an SPSC ring
# refuses a second live producer.
RING_KIND: Final = "mpmc"
_HUP = select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)


class RingStream(io.RawIOBase):
    """One end of a ring byte stream: readable (``rx``), writable (``tx``) or both.

    ``timeout`` (seconds, ``None`` = block) bounds each read and raises
    :class:`TimeoutError`; with ``blocking = False`` a read that finds nothing
    returns ``None`` and a write that finds the ring full returns what it
    wrote (``None`` for nothing), as :class:`io.RawIOBase` specifies."""

    def __init__(self, sock: socket.socket, rx: Optional[Ring], tx: Optional[Ring], *,
                 timeout: Optional[float] = None, picklable: bool = True) -> None:
        super().__init__()
        self._picklable = picklable
        self._sock = sock
        self._rx = rx
        self._tx = tx
        self.timeout = timeout
        self.blocking = True
        self._unpin = pin_rings(self, *(r for r in (rx, tx) if r is not None))
        self._poller = select.poll()
        self._poller.register(sock, _HUP)
        self._poll_hup = self._poller.poll
        self._eof = False
        self._pos = self._end = 0
        if rx is not None:
            # Records are received here whenever the caller's buffer could be
            # too small for one; allocated once, never per read.
            self._cap = rx.max_message_size
            self._buf = bytearray(self._cap)
            self._view = memoryview(self._buf)
            self._hint = 1
        if tx is not None:
            self._chunk = tx.max_message_size

    def __reduce__(self) -> Tuple[Callable[..., RingStream], Tuple[Any, ...]]:
        self._checkClosed()
        if not self._picklable:
            raise TypeError("this stream's rings have no names left to attach to: connect by address instead")
        if self._end > self._pos:
            raise ValueError("this reader holds bytes it has not handed out; only a fresh reader can be passed on")
        keep_alive_for_child((self._rx, self._tx))
        return (_rebuild, (reduction.DupFd(self._sock.fileno()), self._rx, self._tx, self.timeout))

    def _release_rings(self) -> None:
        self._rx = self._tx = None

    # -- io.RawIOBase ------------------------------------------------------
    def readable(self) -> bool:
        self._checkClosed()
        return self._rx is not None

    def writable(self) -> bool:
        self._checkClosed()
        return self._tx is not None

    def _peer_gone(self) -> bool:
        return bool(self._poll_hup(0))

    def poll(self, timeout: Optional[float] = 0.0) -> bool:
        """True when a read would not block (bytes, end-of-file or a dead writer)."""
        rx = self._rx
        if rx is None:
            self._need(rx, "readable")
        if self._end > self._pos or self._eof:
            return True
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        while True:
            if rx.poll(0) or self._peer_gone():
                return True
            wait = PEER_CHECK if deadline is None else min(PEER_CHECK, deadline - time.monotonic())
            if wait <= 0:
                return False
            if rx.poll(wait):
                return True

    # Called where ``ring`` may be None: the overloads tell the checker that
    # the call does not return for None, so the ring is known present after.
    @overload
    def _need(self, ring: None, what: str) -> NoReturn: ...
    @overload
    def _need(self, ring: Optional[Ring], what: str) -> None: ...

    def _need(self, ring: Optional[Ring], what: str) -> None:
        self._checkClosed()
        if ring is None:
            raise io.UnsupportedOperation(f"this end of the stream is not {what}")

    def _fetch(self, target: Union[bytearray, memoryview], block: bool) -> Optional[int]:
        """Receive one record into ``target``; its length, 0 at end-of-file,
        None if ``block`` is false and nothing is there.  A record longer
        than ``target`` comes back from the ring as BufferTooShort."""
        rx: Ring = self._rx  # type: ignore[assignment]  # readinto checked it (no cast(): a call per record)
        deadline = None if self.timeout is None else time.monotonic() + max(self.timeout, 0.0)
        # Short slices first: a writer that just closed is seen at once (a
        # ring wait cannot also wait on the socket); an idle stream settles
        # at one look per PEER_CHECK.
        slice_ = FIRST_SLICE
        recovery = _Recovery(rx)
        while True:
            try:
                if not block:
                    return rx.recv_bytes_into(target, False)
                wait = slice_ if deadline is None else min(slice_, max(deadline - time.monotonic(), 0.0))
                slice_ = min(slice_ * 2, PEER_CHECK)
                return rx.recv_bytes_into(target, True, wait)
            except Empty:
                pass
            except EOFError:
                return 0
            if self._peer_gone():
                # Everything the writers committed happened before their
                # sockets closed: drain it before reporting end-of-file,
                # past any record a killed writer left half-written.
                rx.recover()
                try:
                    return rx.recv_bytes_into(target, False)
                except (Empty, EOFError):
                    return 0
            if not block:
                return None
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("timed out waiting for the writer")
            recovery.tick()

    def readinto(self, b: Any) -> Optional[int]:
        rx = self._rx
        if rx is None:
            self._need(rx, "readable")
        view: Union[bytearray, memoryview] = b if type(b) is bytearray else _bytes_view(b)
        n = len(view)
        filled = 0
        if self._end > self._pos:
            filled = min(n, self._end - self._pos)
            view[:filled] = self._view[self._pos:self._pos + filled]
            self._pos += filled
        while filled < n and not self._eof:
            if filled:
                # A pipe read returns what is there once it has something:
                # only the first record is waited for.
                if not rx.poll(0):
                    break
                block = False
            else:
                block = self.blocking
            room = n - filled
            # Straight into the caller's buffer when the record probably fits
            # (the last record's size is the guess); a wrong guess costs one
            # record's allocation inside BufferTooShort, never data.
            direct = room >= self._hint
            try:
                target: Union[bytearray, memoryview]
                if not direct:
                    target = self._buf
                elif filled:
                    target = memoryview(view)[filled:]
                else:
                    target = view  # a memoryview here would cost more than the call
                got = self._fetch(target, block)
            except BufferTooShort as exc:
                got = len(exc.args[0])
                self._view[:got] = exc.args[0]
                direct = False
            if got is None:
                break
            if got == 0:
                self._eof = True
                break
            self._hint = got
            if direct:
                filled += got
            else:
                k = min(room, got)
                view[filled:filled + k] = self._view[:k]
                self._pos, self._end = k, got
                filled += k
        if filled == 0 and n and not self._eof:
            return None  # non-blocking, nothing there
        return filled

    def readall(self) -> Optional[bytes]:  # type: ignore[override]
        """Read to end-of-file in record-sized steps (RawIOBase's are 8 KiB)."""
        self._need(self._rx, "readable")
        out = bytearray()
        while chunk := self.read(self._cap):
            out += chunk
        return bytes(out) if out or chunk is not None else None

    def write(self, b: Any) -> Optional[int]:
        tx = self._tx
        if tx is None:
            self._need(tx, "writable")
        if self._poll_hup(0):
            raise BrokenPipeError(32, "Broken pipe: the reading end of the stream is closed")
        data: Union[bytes, bytearray, memoryview] = b if type(b) is bytes or type(b) is bytearray else _bytes_view(b)
        n = len(data)
        if self.blocking and n <= self._chunk:
            if n:
                self._send_wait(data)
            return n
        view = memoryview(data)
        sent = 0
        while sent < n:
            chunk = view[sent:sent + self._chunk]
            if self.blocking:
                self._send_wait(chunk)
            else:
                try:
                    tx.send_bytes(chunk, False)
                except Full:
                    return sent or None
            sent += len(chunk)
        return n

    def _send_wait(self, chunk: Union[bytes, bytearray, memoryview]) -> None:
        tx: Ring = self._tx  # type: ignore[assignment]  # write checked it (no cast(): a call per record)
        try:
            tx.send_bytes(chunk, True, PEER_CHECK)
            return
        except Full:
            pass
        recovery = _Recovery(tx)
        while True:
            if self._peer_gone():
                raise BrokenPipeError(32, "Broken pipe: the reading end of the stream is closed")
            recovery.tick()
            try:
                tx.send_bytes(chunk, True, PEER_CHECK)
                return
            except Full:
                pass

    @property
    def max_message_size(self) -> int:
        """The longest record: writes up to this size arrive contiguous."""
        ring = self._tx if self._tx is not None else self._rx
        if ring is None:
            self._need(ring, "open")
        return ring.max_message_size

    def close(self) -> None:
        if not self.closed:
            try:
                self._poller.unregister(self._sock)
            except (KeyError, ValueError):
                pass
            self._sock.close()
            # Dropped, not closed: the creator unlinks a ring's name only
            # when no end in this process (or a child being spawned) needs it.
            self._rx = self._tx = None
            self._buf = self._view = None  # type: ignore[assignment]  # dropped with the rings
            self._unpin()
        super().close()

    def __repr__(self) -> str:
        if self.closed:
            return "<ringipc.RingStream closed>"
        side = "rw" if self._rx is not None and self._tx is not None else ("r" if self._rx is not None else "w")
        return f"<ringipc.RingStream {side} rx={getattr(self._rx, 'name', None)} tx={getattr(self._tx, 'name', None)}>"


class _Recovery:
    """The ring frees a dead writer's half-written record only within one
    wait of RECOVERY_AFTER seconds, longer than our PEER_CHECK slices; live
    writers and the reader would wait behind it for ever, so ask for it
    once the slices add up to that long."""

    __slots__ = ("_ring", "_since")

    def __init__(self, ring: Ring) -> None:
        self._ring = ring
        self._since = time.monotonic()

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._since >= RECOVERY_AFTER:
            self._ring.recover()
            self._since = now


def _bytes_view(b: Any) -> memoryview:
    view = memoryview(b)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _rebuild(dupfd: Any, rx: Optional[Ring], tx: Optional[Ring], timeout: Optional[float]) -> RingStream:
    return RingStream(socket.socket(fileno=dupfd.detach()), rx, tx, timeout=timeout)


def stream_pair(capacity: int = DEFAULT_CAPACITY) -> Tuple[RingStream, RingStream]:
    """``(writer, reader)``: a one-way byte stream over a new ring.

    Both ends can be handed to child processes (fork, spawn, forkserver)."""
    s1, s2 = socket.socketpair()
    try:
        ring = Ring(capacity, RING_KIND)
        return RingStream(s1, None, ring), RingStream(s2, ring, None)
    except BaseException:
        s1.close()
        s2.close()
        raise


__all__ = ["RingStream", "stream_pair"]
