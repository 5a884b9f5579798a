"""Synchronisation primitives shared by processes, that survive a crashed holder.

``Lock``, ``RLock``, ``Semaphore``, ``BoundedSemaphore``, ``Event`` and
``Condition`` have multiprocessing's API, live in small POSIX shared-memory
segments (attach by name, pass to children, cleaned up like rings) and take
no system call when uncontended.  A Lock whose holder dies is taken over by
the next waiter, who is told (``owner_died``, ``on_owner_death``,
OwnerDiedWarning).  ``FileLock`` is the kernel's shared/exclusive byte-range
file lock, released when its holder dies.  See docs/sync.md.
"""
from ._sync import (BoundedSemaphore, Event, HOLDER_CHECK_EVERY, Lock, OwnerDiedWarning, SEM_VALUE_MAX,
                    Semaphore)
from .condition import Condition
from .filelock import FileLock
from .rlock import RLock

__all__ = ["BoundedSemaphore", "Condition", "Event", "FileLock", "Lock", "OwnerDiedWarning", "RLock", "Semaphore",
           "HOLDER_CHECK_EVERY", "SEM_VALUE_MAX"]
