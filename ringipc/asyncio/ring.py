"""An awaitable view of a :class:`ringipc.Ring`.

Every call first tries the ring without blocking - the same call a
synchronous user makes, so both kinds of user share one ring - and awaits
the ring's doorbell only when it is empty (or, for sends, full).  The
message is taken in one non-blocking call that either returns it or leaves
it in the ring, and nothing is awaited between taking it and returning it:
a cancelled receive loses nothing.
"""
from __future__ import annotations

import queue
from typing import Any, AsyncIterator, Optional

from ..core._ring import Ring
from ._bell import AsyncBell
from ._closing import ClosesOnExit
from ._until_eof import until_eof

__all__ = ["AsyncRing"]


class AsyncRing(ClosesOnExit):
    """``await ring.recv_bytes()``, ``await ring.send_bytes(data)``, ``async for``.

    Wraps `ring` (a :class:`ringipc.Ring`, or a capacity to create one, as
    ``Ring(capacity, kind)``).  ``close()`` closes the wrapped ring.
    ``spin_us``: how long a wait looks at the ring before it parks on the
    loop (ringipc/asyncio/_spin.py; 0 disables, None the default)."""

    def __init__(self, ring: "Ring | int" = 1 << 20, kind: str = "mpmc", *,
                 spin_us: Optional[float] = None) -> None:
        self.ring: Ring = ring if isinstance(ring, Ring) else Ring(ring, kind)  # type: ignore[arg-type]
        self._readable = AsyncBell(self.ring, writer=False, spin_us=spin_us)
        self._writable = AsyncBell(self.ring, writer=True, spin_us=spin_us)

    async def send_bytes(self, data: Any) -> None:
        """Append one message, waiting (without blocking the loop) for room;
        BrokenPipeError once the reading side shut down."""
        ring = self.ring
        while True:
            try:
                ring.send_bytes(data, False)
                return
            except queue.Full:
                await self._writable.wait(memoryview(data).nbytes)

    async def recv_bytes(self) -> bytes:
        """The next message; EOFError once the writing side shut down and
        everything was read."""
        ring = self.ring
        while True:
            try:
                return ring.recv_bytes(False)
            except queue.Empty:
                await self._readable.wait()

    async def recv_bytes_into(self, buffer: Any) -> int:
        """Copy the next message into `buffer`; its length (BufferTooShort
        as Ring.recv_bytes_into)."""
        ring = self.ring
        while True:
            try:
                return ring.recv_bytes_into(buffer, False)
            except queue.Empty:
                await self._readable.wait()

    def send_bytes_nowait(self, data: Any) -> None:
        self.ring.send_bytes(data, False)

    def recv_bytes_nowait(self) -> bytes:
        return self.ring.recv_bytes(False)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return until_eof(self.recv_bytes)

    def shutdown(self, how: str) -> None:
        self.ring.shutdown(how)  # type: ignore[arg-type]

    def close(self) -> None:
        """Wake awaiting tasks (OSError) and close the ring handle."""
        self._readable.close()
        self._writable.close()
        self.ring.close()

    def __repr__(self) -> str:
        return f"<ringipc.asyncio.AsyncRing of {self.ring!r}>"
