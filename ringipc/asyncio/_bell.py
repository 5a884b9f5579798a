"""Awaiting one direction of a ring on the running event loop.

One :class:`AsyncBell` per ring handle and direction serves every task of
the process that awaits it.  Its doorbell (ringipc.core.doorbell) is
registered with the loop's own readiness machinery (``add_reader``) once,
and stays registered: an unarmed bell is never rung, so this costs nothing
while nobody waits, and saves two epoll_ctl calls per wait.  The first
waiter arms the bell (which re-checks the ring, so nothing that happened
before is missed); later waiters only queue a future.  When the bell rings,
its one datagram is taken and every waiter is resumed to retry the ring
without blocking; those that find nothing wait again (the first re-arms).
No thread, no timer.  A ring that comes with nobody waiting (an arm that
raced with a commit) is taken when the loop sees it, and costs one spurious
retry at most.

A waiter that is cancelled takes its future out; the last one to leave
disarms, so writers are not made to ring a bell nobody listens to.
``extra`` (an :class:`FdWatch` of a Connection's liveness socket, shared by
its two bells: a loop takes one reader per descriptor) is watched beside
the bell, so the death of a peer wakes waiting tasks too.
"""
from __future__ import annotations

import asyncio
import weakref
from typing import Any, Callable, Dict, Optional

from ..core.doorbell import ANY_RELEASE, Doorbell
from ._spin import Spin
from ._waiters import Waiters

__all__ = ["AsyncBell", "FdWatch", "ANY_RELEASE"]


class FdWatch:
    """A Connection's liveness socket, watched for both its bells.

    The socket carries no data: it becomes readable only when the peer is
    gone, and then stays so.  It is registered with the loop by the first
    wait and stays registered (no epoll_ctl per wait) until it fires; then
    it is unregistered (it would fire on every loop turn), ``fired`` is set
    and every user's callback runs.  The owner looks at the peer once while
    ``fired`` is set (initially too) and calls ``alive()`` if it is there,
    which lets the next wait register it again."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.fired = True  # nobody has looked yet
        self._users: Dict[int, Callable[[], None]] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def add(self, loop: asyncio.AbstractEventLoop, key: object, callback: Callable[[], None]) -> None:
        self._users[id(key)] = callback
        if self._loop is not loop and not self.fired:
            self._unregister()
            self._loop = loop
            loop.add_reader(self.fd, self._ready)

    def alive(self) -> None:
        self.fired = False

    def remove(self, key: object) -> None:
        if self._users.pop(id(key), None) is not None and not self._users:
            self._unregister()

    def _unregister(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self.fd)

    def _ready(self) -> None:
        self._unregister()
        self.fired = True
        for callback in list(self._users.values()):
            callback()


def _remove_reader(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    if not loop.is_closed():
        loop.remove_reader(fd)


def _rang_weakly(ref: "weakref.ref[AsyncBell]") -> None:
    bell = ref()
    if bell is not None:
        bell._rang()


class AsyncBell:
    def __init__(self, ring: Any, writer: bool = False, extra: Optional[FdWatch] = None,
                 spin_us: Optional[float] = None) -> None:
        self._ring = ring
        self._spin = Spin(spin_us)
        self._writer = writer
        self._extra = extra
        self._bell: Optional[Doorbell] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._registration: Optional["weakref.finalize[Any, Any]"] = None
        self._waiters = Waiters()
        self._closed = False

    def _registered(self, loop: asyncio.AbstractEventLoop) -> Doorbell:
        bell = self._bell
        if bell is None or bell.closed or bell.inherited:
            # First use, or a forked child: the parent's bell (and loop) are not ours.
            bell = self._bell = Doorbell(self._ring, self._writer)
            self._loop = None
        if self._loop is not loop:
            if self._waiters:
                raise RuntimeError("this ringipc object is being awaited in another event loop")
            self._unregister()
            # Weakly: a loop that outlives a dropped queue must not keep its
            # ring (and bell) alive; the finalizer unregisters it then.
            loop.add_reader(bell.fileno(), _rang_weakly, weakref.ref(self))
            self._registration = weakref.finalize(self, _remove_reader, loop, bell.fileno())
            self._loop = loop
        return bell

    async def wait(self, length: int = 0, ready: Optional[Callable[[], bool]] = None) -> None:
        """Return once the ring may have changed: at once if it is ready
        now (readable; writable for `length` bytes; the other side closed;
        or ``ready()`` is true after arming), else when the bell rings.
        Spurious returns happen; callers retry without blocking and loop."""
        if self._closed:
            raise OSError("handle is closed")
        loop = asyncio.get_running_loop()
        bell = self._registered(loop)
        if not self._waiters:
            # Look before parking (ringipc/asyncio/_spin.py); not for a wait
            # on something the ring cannot show (ANY_RELEASE: a queue's slots).
            if length != ANY_RELEASE:
                spin = self._spin.seconds(loop)
                if spin:
                    ok = bell.spin(length, spin)
                    self._spin.paid(ok)
                    if ok:
                        return
            if bell.arm(length):
                return
            if ready is not None and ready():
                bell.disarm()
                return
            if self._extra is not None:
                self._extra.add(loop, self, self._wake)
        await self._waiters.wait(loop, self._disarm)
        if self._closed:
            raise OSError("handle is closed")

    def _disarm(self) -> None:
        # The last waiter was cancelled: writers need not ring for nobody.
        # (The liveness watch stays registered, see FdWatch.)
        if not self._closed and self._bell is not None:
            self._bell.disarm()

    def _unregister(self) -> None:
        self._loop = None
        registration, self._registration = self._registration, None
        if registration is not None:
            registration()

    def _rang(self) -> None:
        if self._bell is not None and not self._bell.closed:
            self._bell.take_one()
        self._wake()

    def _wake(self) -> None:
        self._waiters.wake_all()

    def close(self) -> None:
        """Wake every waiter (they raise OSError) and let the bell go."""
        self._closed = True
        self._wake()
        if self._extra is not None:
            self._extra.remove(self)
        self._unregister()
        bell, self._bell = self._bell, None
        if bell is not None:
            bell.close()
        # Closing lets go of the ring at once (its creator unlinks it when
        # its last handle goes), whatever still refers to this object.
        self._ring = None
