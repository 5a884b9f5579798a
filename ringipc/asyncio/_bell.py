"""Awaiting one direction of a ring on the running event loop.

One :class:`AsyncBell` per ring handle and direction serves every task of
the process that awaits it: the first waiter drains and arms the ring's
doorbell (ringipc.core.doorbell) and registers its descriptor with the
loop's own readiness machinery (``add_reader``); later waiters only queue a
future.  When the bell rings, every waiter is resumed and retries the ring
without blocking; those that find nothing wait again (the first re-arms).
No thread, no timer: a waiter costs the loop nothing until the ring changes.

A waiter that is cancelled takes its future out; the last one to leave
unregisters the descriptor and disarms, so writers are not made to ring a
bell nobody listens to.  ``extra`` (an :class:`FdWatch` of a Connection's
liveness socket, shared by its two bells: a loop takes one reader per
descriptor) is watched beside the bell, so the death of a peer wakes waiters
too.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any, Callable, Dict, List, Optional

from ..core.doorbell import ANY_RELEASE, Doorbell

__all__ = ["AsyncBell", "FdWatch", "ANY_RELEASE"]


class FdWatch:
    """One descriptor watched for several users on one loop: the first
    user registers it, the last one to leave unregisters it, and readiness
    calls every user's callback."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._users: Dict[int, Callable[[], None]] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def add(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        if not self._users:
            self._loop = loop
            loop.add_reader(self.fd, self._ready)
        self._users[id(callback.__self__)] = callback  # type: ignore[attr-defined]

    def remove(self, callback: Callable[[], None]) -> None:
        if self._users.pop(id(callback.__self__), None) is not None and not self._users:  # type: ignore[attr-defined]
            loop, self._loop = self._loop, None
            if loop is not None and not loop.is_closed():
                loop.remove_reader(self.fd)

    def _ready(self) -> None:
        for callback in list(self._users.values()):
            callback()


class AsyncBell:
    def __init__(self, ring: Any, writer: bool = False, extra: Optional[FdWatch] = None) -> None:
        self._ring = ring
        self._writer = writer
        self._extra = extra
        self._bell: Optional[Doorbell] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._fd = -1
        self._waiters: List["asyncio.Future[None]"] = []
        self._closed = False

    def _doorbell(self) -> Doorbell:
        bell = self._bell
        if bell is None or bell.closed or bell._pid != os.getpid():
            # First use, or a forked child: the parent's bell is not ours.
            bell = self._bell = Doorbell(self._ring, self._writer)
        return bell

    async def wait(self, length: int = 0, ready: Optional[Callable[[], bool]] = None) -> None:
        """Return once the ring may have changed: at once if it is ready
        now (readable; writable for `length` bytes; the other side closed;
        or ``ready()`` is true after arming), else when the bell rings.
        Spurious returns happen; callers retry without blocking and loop."""
        if self._closed:
            raise OSError("handle is closed")
        loop = asyncio.get_running_loop()
        if not self._waiters:
            bell = self._doorbell()
            bell.drain()
            if bell.arm(length):
                return
            if ready is not None and ready():
                bell.disarm()
                return
            self._loop = loop
            self._fd = bell.fileno()
            loop.add_reader(self._fd, self._rang)
            if self._extra is not None:
                self._extra.add(loop, self._rang)
        elif self._loop is not loop:
            raise RuntimeError("this ringipc object is being awaited in another event loop")
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append(fut)
        try:
            await fut
        finally:
            if not fut.done() or fut.cancelled():
                # Cancelled (or the task was): its place goes, and with the
                # last waiter the registration and the arm.
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
                if not self._waiters:
                    self._unregister()
                    if self._bell is not None and not self._closed:
                        self._bell.disarm()
        if self._closed:
            raise OSError("handle is closed")

    def _unregister(self) -> None:
        loop = self._loop
        if loop is None:
            return
        self._loop = None
        if not loop.is_closed():
            loop.remove_reader(self._fd)
        if self._extra is not None:
            self._extra.remove(self._rang)

    def _rang(self) -> None:
        self._unregister()
        if self._bell is not None and not self._bell.closed:
            self._bell.drain()
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def close(self) -> None:
        """Wake every waiter (they raise OSError) and let the bell go."""
        self._closed = True
        self._rang()
        bell, self._bell = self._bell, None
        if bell is not None:
            bell.close()
        # Closing lets go of the ring at once (its creator unlinks it when
        # its last handle goes), whatever still refers to this object.
        self._ring = None
