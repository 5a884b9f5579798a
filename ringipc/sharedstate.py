"""Named POSIX semaphores for the drop-in queues, and lifetimes across spawn.

A queue's object counts (free slots for ``maxsize``, unfinished tasks for
``JoinableQueue``) live in named POSIX semaphores, as multiprocessing keeps
them in SemLocks.  A semaphore has no owner, so a SIGKILLed peer cannot leave
it "held" the way it can leave a lock held; the worst a death between the ring
operation and the semaphore update does is skew the count by one (the same
exposure multiprocessing has).  Names are ``/ringipc-<pid>-<hex>-<role>``,
created ``O_EXCL`` with mode 0600; only the creating process unlinks them, when
its handle is collected or at exit.  Handles pickle by name, at any time.

Posting never blocks, so release() is cheap; waiting is done in slices so that
signal handlers run and deadlines use the monotonic clock.
"""
import os
import secrets
import time
import weakref

import posix_ipc

from multiprocessing import context as _mp_context

from ._segment import PREFIX

VALUE_MAX = posix_ipc.SEMAPHORE_VALUE_MAX
WAIT_SLICE = 0.05


def _unlink(name, pid):
    if os.getpid() == pid:  # forked children inherit finalizers but own nothing
        try:
            posix_ipc.unlink_semaphore(name)
        except posix_ipc.ExistentialError:
            pass


class NamedSemaphore:
    """A counting semaphore shared by name between unrelated processes."""

    def __init__(self, value, role="s"):
        if not 0 <= value <= VALUE_MAX:
            raise ValueError(f"semaphore value must be in 0..{VALUE_MAX}, not {value}")
        name = f"/{PREFIX}{os.getpid()}-{secrets.token_hex(6)}-{role}"
        self._sem = posix_ipc.Semaphore(name, posix_ipc.O_CREX, mode=0o600, initial_value=value)
        self.name = name
        self._finalizer = weakref.finalize(self, _unlink, name, os.getpid())
        self._bind()

    @classmethod
    def _attach(cls, name):
        self = cls.__new__(cls)
        self._sem = posix_ipc.Semaphore(name)
        self.name = name
        self._finalizer = None
        self._bind()
        return self

    def _bind(self):
        self.release = self._sem.release
        self._try = self._sem.acquire

    def __reduce__(self):
        keep_alive_for_child(self)
        return (NamedSemaphore._attach, (self.name,))

    @property
    def value(self):
        return self._sem.value

    def acquire(self, block=True, timeout=None):
        """Take one unit; False if `block` is false or `timeout` passed first."""
        try:
            self._try(0)
            return True
        except posix_ipc.BusyError:
            if not block:
                return False
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        while True:
            wait = WAIT_SLICE
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return False
            try:
                self._try(wait)
                return True
            except posix_ipc.BusyError:
                pass
            except posix_ipc.SignalError:
                pass  # the handler has run (or raised) by now; keep waiting

    def close(self):
        self._sem.close()


def keep_alive_for_child(obj):
    """While a child is being spawned (spawn/forkserver), keep `obj` alive as
    long as the parent's Process object, so the names the child attaches to
    are not unlinked if the parent drops its handle right after start()."""
    popen = _mp_context.get_spawning_popen()
    if popen is not None:
        try:
            popen.__dict__.setdefault("_ringipc_keepalive", []).append(obj)
        except AttributeError:
            pass
