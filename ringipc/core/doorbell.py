"""Doorbell: a file descriptor that becomes readable when a ring changes.

The ring rings it itself (csrc/ring_bell.c): this object binds an abstract
AF_UNIX datagram socket under a random name, writes the name into its
handle's slot, and *arms* it before every wait.  The next commit (for a
reader's bell) or release (for a writer's, waiting for room) by any process
takes the armed bit and sends one datagram; nobody pays anything while no
bell is armed.  The protocol, for a poller (an event loop, select()):

    bell.drain()                       # forget earlier rings
    if bell.arm():  ... ready now, do not wait
    else:           ... wait until bell.fileno() is readable, then retry

``arm()`` fences and re-checks the ring, so a change between the caller's
last look and the arm is never missed: either arm() reports it, or the
bell rings.  A ring may be spurious (another process took the message):
callers always try the ring again and re-arm.

The socket is abstract (no file to leave behind) and dies with the
process; a dead watcher costs the ring's writers one failed send, once.
After fork() a child's copy is useless (the parent owns the name and the
slot): ``Doorbell`` notices and refuses, and the child makes its own.
"""
from __future__ import annotations

import os
import secrets
import socket
from typing import Any

from ._ring import BELL_PREFIX, _bell_spin

ANY_RELEASE = (1 << 64) - 1

# Forks so far in this process's line: a bell made before the last fork is
# the parent's.  A counter, not os.getpid(): that is a system call, and the
# bell is checked on every wait.
_forks = 0


def _after_fork_in_child() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


class Doorbell:
    """Readiness of one direction of `ring`: ``writer=False`` rings when a
    message (or EOF) may be there, ``writer=True`` when room may be."""

    def __init__(self, ring: Any, writer: bool = False) -> None:
        self._ring = ring
        self._writer = bool(writer)
        self._forks = _forks
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.setblocking(False)
            while True:
                name = secrets.randbits(64)
                if name == 0:
                    continue
                # Kept: light() sends to it, and asking the kernel was a
                # system call per lighting (a pool's result thread lights per task).
                self._addr = b"\0" + f"{BELL_PREFIX}{name:016x}".encode()
                try:
                    self._sock.bind(self._addr)
                    break
                except OSError:  # taken (a 1 in 2^64 chance): draw again
                    continue
            self._own_handle = None
            if not ring._bell_install(self._writer, name):
                # This handle rings another bell already (a queue's reader
                # and an asyncio wrapper of it, say): a handle has one per
                # direction, so this bell gets a handle of its own.
                ring = self._own_handle = self._ring = ring._another_handle()
                ring._bell_install(self._writer, name)
        except BaseException:
            self._sock.close()
            own = getattr(self, "_own_handle", None)  # unset if the failure came before it
            if own is not None:
                own.close()
            raise
        self._name = name

    @property
    def name(self) -> int:
        return self._name

    @property
    def inherited(self) -> bool:
        """True in a process forked after this bell was made (the parent's)."""
        return self._forks != _forks

    @property
    def closed(self) -> bool:
        return self._sock.fileno() < 0

    def _check(self) -> None:
        if self._forks != _forks:
            raise OSError("this doorbell belongs to the parent process; make a new one after fork")
        if self._sock.fileno() < 0:
            raise OSError("doorbell is closed")

    def fileno(self) -> int:
        self._check()
        return self._sock.fileno()

    def arm(self, length: int = 0) -> bool:
        """Arm for the next change; True if the ring is ready already
        (readable, writable for `length` bytes, or the other side closed).
        A writer's ``length=ANY_RELEASE`` arms for the next release whatever
        room there is (for waits on something else that readers free, such
        as a bounded queue's slots)."""
        self._check()
        return bool(self._ring._bell_arm(self._writer, length))

    def spin(self, length: int, seconds: float) -> bool:
        """Look at the ring for up to `seconds` (busy, with the GIL
        released) without arming; True once it is ready as for arm().
        Writers pay nothing for it: no bit is set, no datagram comes."""
        self._check()
        return bool(_bell_spin(self._ring, self._writer, length, seconds))

    def disarm(self) -> None:
        """Take back an arm that has not rung (a cancelled wait)."""
        if self._forks == _forks and not self.closed and not self._ring.closed:
            self._ring._bell_disarm(self._writer)

    def drain(self) -> int:
        """Consume every ring so far; returns how many there were."""
        self._check()
        n = 0
        while True:
            try:
                self._sock.recv(16)
            except (BlockingIOError, InterruptedError):
                return n
            n += 1

    def take_one(self) -> None:
        """Consume one ring, if there is one (an armed bell rings once)."""
        try:
            self._sock.recv(16)
        except (BlockingIOError, InterruptedError):
            pass

    def light(self) -> None:
        """Make the descriptor readable now (for callers that keep it lit
        while the ring holds a message, as multiprocessing's wait() needs)."""
        self._check()
        try:
            self._sock.sendto(b"\1", self._addr)
        except BlockingIOError:
            pass  # its queue is full: it is readable already

    def close(self) -> None:
        if self.closed:
            return
        if self._forks == _forks and not self._ring.closed:
            try:
                self._ring._bell_install(self._writer, 0)
            except Exception:
                pass  # the ring went away first: closing its handle forgot the bell
        self._sock.close()
        if self._own_handle is not None and self._forks == _forks:
            self._own_handle.close()

    def __del__(self) -> None:
        # Dropped without close(): free the handle's bell for the next one.
        if "_name" in self.__dict__:
            try:
                self.close()
            except Exception:
                pass  # interpreter teardown: the process's exit frees it anyway

    def __enter__(self) -> "Doorbell":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        side = "space" if self._writer else "data"
        return f"<ringipc Doorbell {side} of {self._ring!r}{' closed' if self.closed else ''}>"
