"""Awaitable Connection and Pipe over ringipc's Pipe.

Each end wraps a synchronous :class:`ringipc.Connection` (``.sync``) and
uses its rings directly: a receive takes the next message without blocking
or awaits the receive ring's doorbell *and* the connection's liveness
socket, so a peer that closes or dies wakes it at once; the synchronous
rules then apply - messages the peer left are delivered first, then
EOFError; a send to a dead peer raises BrokenPipeError.  Both ends of one
Pipe may be awaited in one loop, or one end may stay synchronous in a
worker process.
"""
from __future__ import annotations

import queue
from typing import Any, AsyncIterator, Optional, Tuple

from ..core import large
from ..errors import BufferTooShort
from ..mp import connection as _conn, oob
from ..mp.pickling import loads
from ._bell import AsyncBell, FdWatch
from ._closing import ClosesOnExit
from ._until_eof import until_eof

__all__ = ["Connection", "Pipe"]


class Connection(ClosesOnExit):
    """``await conn.recv()``, ``await conn.send(obj)`` and friends.
    ``spin_us``: how long a wait looks at the ring before it parks on the
    loop (ringipc/asyncio/_spin.py; 0 disables, None the default)."""

    def __init__(self, conn: _conn.Connection, *, spin_us: Optional[float] = None) -> None:
        self.sync = conn
        self._rx_bell = self._tx_bell = None
        # The liveness socket, watched while either direction waits.  Not a
        # dup: a second descriptor here would keep the peer's EOF away.
        peer = self._peer = FdWatch(conn.fileno())
        if conn.readable:
            self._rx_bell = AsyncBell(conn._rx, writer=False, extra=peer, spin_us=spin_us)
        if conn.writable:
            self._tx_bell = AsyncBell(conn._tx, writer=True, extra=peer, spin_us=spin_us)

    def _peer_gone(self) -> bool:
        """Whether the peer is gone; asks the socket (a system call) only
        when its watch fired, or nobody has asked yet."""
        if not self._peer.fired:
            return False
        if self.sync._peer_gone():
            return True
        self._peer.alive()
        return False

    # -- receiving ----------------------------------------------------------------
    def _recv_nowait(self) -> bytes:
        c = self.sync
        if c.closed or not c.readable:
            c._check_closed()
            c._check_readable()
        try:
            data = c._rx.recv_bytes(False)
        except queue.Empty:
            if not self._peer_gone():
                raise
            try:  # the peer wrote before it closed: drain what it left first
                data = c._rx.recv_bytes(False)
            except queue.Empty:
                raise EOFError from None
        if data and not data[0] and large.is_reference(data):
            return large.load_bytes(data)
        return data

    async def recv_bytes(self) -> bytes:
        while True:
            try:
                return self._recv_nowait()
            except queue.Empty:
                assert self._rx_bell is not None
                await self._rx_bell.wait()

    async def recv(self) -> Any:
        data = await self.recv_bytes()
        return oob.decode(data) if data and not data[0] and oob.is_frame(data) else loads(data)

    async def recv_bytes_into(self, buf: Any, offset: int = 0) -> int:
        with memoryview(buf) as m:
            if offset < 0 or offset > m.nbytes:
                raise ValueError("offset out of range")
            data = await self.recv_bytes()
            if m.nbytes < offset + len(data):
                raise BufferTooShort(data)
            with m.cast("B") as flat:
                flat[offset:offset + len(data)] = data
            return len(data)

    def poll(self) -> bool:
        """Whether recv() would complete without waiting."""
        return self.sync.poll(0)

    # -- sending ------------------------------------------------------------------
    def _encode(self, data: Any) -> Any:
        c = self.sync
        if c.closed or not c.writable:
            c._check_closed()
            c._check_writable()
        if type(data) is oob.Frame:
            if data.size <= c._limit:
                return data
        elif len(data) <= c._limit and not (data and not data[0] and large.is_reference(data)):
            return data
        return large.export(c._tx.name, data, c)

    async def _send_encoded(self, data: Any) -> None:
        c = self.sync
        c._check_peer()  # at most every PEER_CHECK seconds, as a synchronous send
        size = data.size if type(data) is oob.Frame else len(data)
        while True:
            try:
                if type(data) is oob.Frame:
                    oob.send(c._tx, data, False)
                else:
                    c._tx.send_bytes(data, False)
                return
            except queue.Full:
                if self._peer_gone():
                    raise _conn._broken_pipe() from None
                assert self._tx_bell is not None
                await self._tx_bell.wait(size)

    async def _send(self, data: Any) -> None:
        encoded = self._encode(data)
        try:
            await self._send_encoded(encoded)
        except BaseException:
            if encoded is not data:
                # A reference to a slab or side segment that will never be
                # sent (cancelled while the ring was full, or the peer gone):
                # the slab goes back to the pool, a one-off segment away.
                large.discard(encoded)
            raise

    async def send_bytes(self, buf: Any, offset: int = 0, size: Optional[int] = None) -> None:
        if type(buf) is bytes and offset == 0 and size is None:
            return await self._send(buf)  # the everyday call: no copy
        with memoryview(buf) as m:
            m = m.cast("B") if m.format != "B" else m
            if offset < 0 or offset > m.nbytes or (size is not None and (size < 0 or offset + size > m.nbytes)):
                raise ValueError("offset/size out of range")
            data = bytes(m[offset:] if size is None else m[offset:offset + size])
        await self._send(data)

    async def send(self, obj: Any) -> None:
        await self._send(oob.encode(obj))

    # -- lifetime -----------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[Any]:
        return until_eof(self.recv)

    @property
    def closed(self) -> bool:
        return self.sync.closed

    def close(self) -> None:
        for bell in (self._rx_bell, self._tx_bell):
            if bell is not None:
                bell.close()
        self.sync.close()

    def __repr__(self) -> str:
        return f"<ringipc.asyncio.Connection of {self.sync!r}>"


def Pipe(duplex: bool = True, *, capacity: int = _conn.DEFAULT_CAPACITY,
         spin_us: Optional[float] = None) -> Tuple[Connection, Connection]:
    """Two awaitable ends of a new ringipc Pipe (``.sync`` of each is the
    synchronous end, e.g. to hand to a worker process)."""
    a, b = _conn.Pipe(duplex, capacity=capacity)
    return Connection(a, spin_us=spin_us), Connection(b, spin_us=spin_us)
