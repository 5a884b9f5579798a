"""A re-entrant lock shared by processes, on ringipc's crash-safe Lock.

Which thread holds it, and how often, is known only to the holding process:
another process's handle sees the underlying Lock held and waits for it, so
the recursion count never has to be shared.
"""
import os
import threading

from ._sync import Lock


class NotOwnedError(AssertionError, RuntimeError):
    """Releasing an RLock this thread does not hold: multiprocessing raises
    AssertionError there and threading RuntimeError, so this is both."""


class RLock:
    """Like ``multiprocessing.RLock``: the holding thread may acquire it again
    and must release it as often.  A holder's death is handled by the
    underlying :class:`Lock` (``owner_died``, ``on_owner_death``)."""

    def __init__(self, name=None, on_owner_death=None, _lock=None):
        self._lock = _lock if _lock is not None else Lock(name, on_owner_death=on_owner_death)
        self._owner = None  # (pid, thread ident) of the holder, in the holding process only
        self._count = 0

    @classmethod
    def attach(cls, name, on_owner_death=None):
        return cls(_lock=Lock.attach(name, on_owner_death=on_owner_death))

    @property
    def name(self):
        return self._lock.name

    @property
    def owner_died(self):
        return self._lock.owner_died

    def _me(self):
        return os.getpid(), threading.get_ident()

    def _is_owned(self):
        return self._count > 0 and self._owner == self._me()

    def acquire(self, block=True, timeout=None, *, blocking=None):
        if blocking is not None:
            block = blocking
        if self._is_owned():
            self._count += 1
            return True
        if not self._lock.acquire(block, timeout):
            return False
        self._owner, self._count = self._me(), 1
        return True

    def release(self):
        if not self._is_owned():
            raise NotOwnedError("attempt to release recursive lock not owned by thread")
        self._count -= 1
        if self._count == 0:
            self._owner = None
            self._lock.release()

    # Condition's hooks: give the lock up entirely while waiting, then restore.
    def _recursion_count(self):
        """How often the calling thread holds it (0 if it does not)."""
        return self._count if self._is_owned() else 0

    def _release_save(self):
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        state = self._count
        self._count, self._owner = 0, None
        self._lock.release()
        return state

    def _acquire_restore(self, state):
        self._lock.acquire()
        self._owner, self._count = self._me(), state

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def __reduce__(self):
        return (RLock.attach, (self._lock.name,))

    def close(self):
        self._lock.close()

    def __repr__(self):
        # multiprocessing's form: "<RLock(owner, count)>".
        if self._count:
            return f"<RLock({self._owner[0]}|{self._owner[1]}, {self._count})>"
        return f"<RLock({'SomeOtherProcess' if self._lock.locked() else None}, 0)>"
