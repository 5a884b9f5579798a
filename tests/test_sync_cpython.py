"""CPython's own tests of locks, semaphores, events and conditions, run on
ringipc.sync's primitives: lock_tests.py's thread-based bodies, and
_test_multiprocessing's process-based ones under every start method.
Exclusions (also in docs/sync.md) are deliberate differences."""
import pytest

from _cpython_mp import START_METHODS, RingProcessesMixin, bind, cpython

from ringipc import sync

lock_tests = pytest.importorskip("test.lock_tests")


class SyncProcessesMixin(RingProcessesMixin):
    Lock = staticmethod(sync.Lock)
    RLock = staticmethod(sync.RLock)
    Semaphore = staticmethod(sync.Semaphore)
    BoundedSemaphore = staticmethod(sync.BoundedSemaphore)
    Condition = staticmethod(sync.Condition)
    Event = staticmethod(sync.Event)


for _method in START_METHODS:
    for _base in (cpython._TestLock, cpython._TestSemaphore, cpython._TestCondition, cpython._TestEvent):
        bind(_base, _method, {}, globals(), SyncProcessesMixin)
del _method, _base


# threading's API where it differs from multiprocessing's, which ringipc.sync follows.
THREADING_ONLY = {
    "test_timeout": "a timeout with blocking=False and timeouts < 0 are ignored/treated as 0, as "
                    "multiprocessing does, not ValueError/OverflowError as threading raises",
    "test_acquire_timeout": "as test_timeout",
    "test_repr": "multiprocessing's repr (<Lock(owner=...)>), not threading's",
    "test_locked_repr": "as test_repr",
    "test_at_fork_reinit": "threading's private _at_fork_reinit: a shared lock is not reset in a child",
}


def _threading_suite(base, **types):
    attrs = dict(types, **{name: lock_tests.unittest.skip(why)(lambda self: None)
                           for name, why in THREADING_ONLY.items() if hasattr(base, name)})
    return type(f"Threads{base.__name__}", (base,), attrs)


TestLockThreads = _threading_suite(lock_tests.LockTests, locktype=staticmethod(sync.Lock))
TestRLockThreads = _threading_suite(lock_tests.RLockTests, locktype=staticmethod(sync.RLock))
TestEventThreads = _threading_suite(lock_tests.EventTests, eventtype=staticmethod(sync.Event))
TestConditionThreads = _threading_suite(lock_tests.ConditionTests, condtype=staticmethod(sync.Condition))
TestSemaphoreThreads = _threading_suite(lock_tests.SemaphoreTests, semtype=staticmethod(sync.Semaphore))
TestBoundedSemaphoreThreads = _threading_suite(lock_tests.BoundedSemaphoreTests,
                                               semtype=staticmethod(sync.BoundedSemaphore))
