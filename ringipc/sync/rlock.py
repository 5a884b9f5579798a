"""A re-entrant lock shared by processes, on ringipc's crash-safe Lock.

Which thread holds it, and how often, is known only to the holding process:
another process's handle sees the underlying Lock held and waits for it, so
the recursion count never has to be shared.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Optional, Tuple

from ._sync import Lock


class NotOwnedError(AssertionError, RuntimeError):
    """Releasing an RLock this thread does not hold: multiprocessing raises
    AssertionError there and threading RuntimeError, so this is both."""


class RLock:
    """Like ``multiprocessing.RLock``: the holding thread may acquire it again
    and must release it as often.  A holder's death is handled by the
    underlying :class:`Lock` (``owner_died``, ``on_owner_death``)."""

    def __init__(self, name: Optional[str] = None, on_owner_death: Optional[Callable[..., Any]] = None,
                 _lock: Optional[Lock] = None) -> None:
        self._lock = _lock if _lock is not None else Lock(name, on_owner_death=on_owner_death)
        self._owner: Optional[Tuple[int, int]] = None  # (pid, thread ident) of the holder, in the holding process only
        self._count = 0

    @classmethod
    def attach(cls, name: str, on_owner_death: Optional[Callable[..., Any]] = None) -> RLock:
        return cls(_lock=Lock.attach(name, on_owner_death=on_owner_death))

    @property
    def name(self) -> str:
        return self._lock.name

    @property
    def owner_died(self) -> bool:
        return self._lock.owner_died

    def _me(self) -> Tuple[int, int]:
        return os.getpid(), threading.get_ident()

    def _is_owned(self) -> bool:
        return self._count > 0 and self._owner == self._me()

    def acquire(self, block: bool = True, timeout: Optional[float] = None, *, blocking: Optional[bool] = None) -> bool:
        if blocking is not None:
            block = blocking
        if self._is_owned():
            self._count += 1
            return True
        if not self._lock.acquire(block, timeout):
            return False
        self._owner, self._count = self._me(), 1
        return True

    def release(self) -> None:
        if not self._is_owned():
            raise NotOwnedError("attempt to release recursive lock not owned by thread")
        self._count -= 1
        if self._count == 0:
            self._owner = None
            self._lock.release()

    # Condition's hooks: give the lock up entirely while waiting, then restore.
    def _recursion_count(self) -> int:
        """How often the calling thread holds it (0 if it does not)."""
        return self._count if self._is_owned() else 0

    def _release_save(self) -> int:
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        state = self._count
        self._count, self._owner = 0, None
        self._lock.release()
        return state

    def _acquire_restore(self, state: int) -> None:
        self._lock.acquire()
        self._owner, self._count = self._me(), state

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __reduce__(self) -> Tuple[Callable[..., "RLock"], Tuple[Any, ...]]:
        # The Lock pickles itself: by name, or (anonymous) as a descriptor.
        return (_rlock_over, (self._lock,))

    def close(self) -> None:
        self._lock.close()

    def __repr__(self) -> str:
        # multiprocessing's form: "<RLock(owner, count)>".
        if self._count:
            return f"<RLock({self._owner[0]}|{self._owner[1]}, {self._count})>"  # type: ignore[index]  # owned while counted
        return f"<RLock({'SomeOtherProcess' if self._lock.locked() else None}, 0)>"


def _rlock_over(lock: Any) -> "RLock":
    return RLock(_lock=lock)
