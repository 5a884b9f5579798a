"""Signals that carry an integer: the slow, last-resort channel of Kerrisk's
chapter, for when a process can be told nothing else (no shared memory, no
socket) - e.g. "job 42 is done" to a pid.

``send(pid, value)`` queues a realtime signal with a 64-bit value
(``sigqueue``); a ``SignalReceiver`` blocks that signal and reads (sender pid,
value) from a ``signalfd``, synchronously (``recv``), through ``fileno()`` for
``select``/``selectors``, or in asyncio (``await receiver.recv_async()``).

Limits, plainly: every signal costs a system call and a kernel allocation on
each side, and realtime signals queue only up to RLIMIT_SIGPENDING per user
(``send`` then raises ``BlockingIOError``); standard signals (SIGUSR1, ...)
do not queue at all - several sent while one is pending arrive as one, with
one value.  A signal is delivered to any thread of the process that does not
block it: create the receiver in the main thread before starting others
(threads inherit the blocked set), or a thread that does not block the signal
gets it instead - and for a realtime signal with no handler, that ends the
process.  Linux only (signalfd).
"""
from __future__ import annotations

import asyncio
import os
import select
import signal
import time
from typing import NamedTuple, Optional, Sequence

from ._signalfd import SIGINFO_SIZE, open_fd, parse
from ._signalfd import send as _send

DEFAULT_SIGNAL = signal.SIGRTMIN

__all__ = ["DEFAULT_SIGNAL", "SignalMessage", "SignalReceiver", "send"]


class SignalMessage(NamedTuple):
    signum: int
    sender_pid: int
    sender_uid: int
    value: int


def send(pid: int, value: int = 0, signum: int = DEFAULT_SIGNAL) -> None:
    """Queue `signum` carrying `value` (a signed 64-bit int) for process `pid`.
    ProcessLookupError if it is gone, BlockingIOError if its queue is full."""
    if not -(1 << 63) <= value < (1 << 63):
        raise OverflowError("a signal carries a signed 64-bit value")
    _send(pid, int(signum), value)


class SignalReceiver:
    """Receives the signals `signums` (default: SIGRTMIN) sent to this process.

    Blocks them in the calling thread on creation, so that they wait in the
    kernel instead of running a handler.  They stay blocked after close():
    unblocked, one arriving later would run its default action, which for a
    realtime signal ends the process."""

    def __init__(self, signums: Sequence[int] = (DEFAULT_SIGNAL,)) -> None:
        self.signums = tuple(int(s) for s in signums)
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, self.signums)
        try:
            self._fd: Optional[int] = open_fd(self.signums)
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            raise

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("signal receiver is closed")
        return self._fd

    def recv(self, block: bool = True, timeout: Optional[float] = None) -> SignalMessage:
        """The next signal; TimeoutError if none comes within `timeout`
        (block=False: none waiting).  Ctrl-C interrupts the wait."""
        fd = self.fileno()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            try:
                record = os.read(fd, SIGINFO_SIZE)
            except BlockingIOError:
                pass
            else:
                signum, pid, uid, _code, value = parse(record)
                return SignalMessage(signum, pid, uid, value)
            left = None if deadline is None else deadline - time.monotonic()
            if not block or (left is not None and left <= 0):
                raise TimeoutError("no signal arrived")
            select.select([fd], [], [], left)

    async def recv_async(self) -> SignalMessage:
        """The next signal, waiting in the running event loop (no thread)."""
        loop = asyncio.get_running_loop()
        fd = self.fileno()
        while True:
            try:
                return self.recv(block=False)
            except TimeoutError:
                pass
            ready = loop.create_future()
            loop.add_reader(fd, ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_reader(fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "SignalReceiver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
