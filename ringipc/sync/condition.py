"""A condition variable shared by processes, built from ringipc's semaphores.

The construction is the classic one for condition variables over counting
semaphores (Birrell), with multiprocessing's names for its three semaphores
(code written against multiprocessing reads them): a waiter announces itself
on `_sleeping_count`, gives up the lock and sleeps on `_wait_semaphore`;
notify(n) hands out up to n wake-ups, one per announced sleeper, and waits
until each woken one has acknowledged on `_woken_count` before returning,
so that a wake-up meant for a sleeper cannot be taken by a thread that
starts waiting after the notify.  Waiters that timed
out acknowledge too; their acknowledgements are balanced against their
announcements at the next notify.

A waiter killed between announcing itself and acknowledging leaves an
announcement nobody will acknowledge: notify waits for an acknowledgement
at most ACK_TIMEOUT seconds, then goes on (so nobody waits forever on a dead
process), and the spare wake-up it handed out is taken back.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional, Tuple, TypeVar, Union

from ._sync import Lock, Semaphore
from .rlock import RLock

_R = TypeVar("_R")

ACK_TIMEOUT = 1.0


class Condition:
    """Like ``multiprocessing.Condition``: ``wait``, ``wait_for``, ``notify``,
    ``notify_all``, and the lock's ``acquire``/``release``/context manager."""

    def __init__(self, lock: Union[Lock, RLock, None] = None, _parts: Any = None) -> None:
        if _parts is not None:
            self._lock, self._sleeping_count, self._wait_semaphore, self._woken_count = _parts
        else:
            self._lock = lock if lock is not None else RLock()
            self._sleeping_count, self._wait_semaphore, self._woken_count = Semaphore(0), Semaphore(0), Semaphore(0)
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (Condition, (None, (self._lock, self._sleeping_count, self._wait_semaphore, self._woken_count)))

    def __enter__(self) -> bool:
        return bool(self._lock.__enter__())

    def __exit__(self, *exc: object) -> None:
        self._lock.__exit__(*exc)

    def _is_owned(self) -> bool:
        owned = getattr(self._lock, "_is_owned", None)
        if owned is not None:
            return bool(owned())
        # A plain Lock: held by someone is the best that can be said.
        return bool(self._lock.locked())

    def _check_owned(self, what: str) -> None:
        if not self._is_owned():
            raise RuntimeError(f"cannot {what} on un-acquired lock")

    def wait(self, timeout: Optional[float] = None) -> bool:
        self._check_owned("wait")
        self._sleeping_count.release()
        save = getattr(self._lock, "_release_save", None)
        state = save() if save is not None else self._lock.release()
        try:
            return bool(self._wait_semaphore.acquire(True, timeout))
        finally:
            self._woken_count.release()
            restore = getattr(self._lock, "_acquire_restore", None)
            if restore is not None:
                restore(state)
            else:
                self._lock.acquire()

    def wait_for(self, predicate: Callable[[], _R], timeout: Optional[float] = None) -> _R:
        result = predicate()
        if result:
            return result
        end = None if timeout is None else time.monotonic() + timeout
        while not result:
            left = None
            if end is not None:
                left = end - time.monotonic()
                if left <= 0:
                    break
            self.wait(left)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        self._check_owned("notify")
        # Balance the acknowledgements of waiters that timed out (each also
        # announced itself) before counting who still sleeps.
        while self._woken_count.acquire(False):
            self._sleeping_count.acquire(False)
        woken = 0
        while woken < n and self._sleeping_count.acquire(False):
            self._wait_semaphore.release()
            woken += 1
        for _ in range(woken):
            if not self._woken_count.acquire(True, ACK_TIMEOUT):
                break  # a waiter died after announcing itself: take back what is left
        while self._wait_semaphore.acquire(False):
            pass

    def notify_all(self) -> None:
        self.notify(1 << 30)

    def close(self) -> None:
        for sem in (self._sleeping_count, self._wait_semaphore, self._woken_count):
            sem.close()

    def __repr__(self) -> str:
        return f"<ringipc.Condition {self._lock!r}>"
