# cython: language_level=3
"""Process-shared Lock, Semaphore and Event over csrc/sync.c.

Each primitive is one page of POSIX shared memory, named like rings
(``ringipc-<pid>-<hex>`` or ``ringipc-<name>``), created mode 0600 and
unlinked by its creator on close or at exit.  The uncontended calls are one
CAS each under the GIL; a blocking wait first spins about 10 us (a Lock
with the GIL held, the others without: csrc/sync.h), then drops the GIL and
sleeps in slices of WAIT_SLICE seconds against a CLOCK_MONOTONIC deadline,
so that Ctrl-C runs promptly and a lock waiter can look for a dead holder
every HOLDER_CHECK_EVERY seconds.
"""
import os
import warnings

cimport cython
from cpython.buffer cimport PyBUF_WRITABLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport int32_t, uint32_t, uint64_t
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from posix.unistd cimport getpid

from multiprocessing.reduction import ForkingPickler

from ..core import _segment
from ..core._segment_handle import SegmentHandle, open_ref
from ..errors import CorruptSegment, RingError

cdef extern from "sync.h" nogil:
    struct rip_sync:
        int32_t creator_pid
        uint32_t max_value
        uint32_t flags
    ctypedef enum rip_sync_status:
        RIP_SYNC_OK, RIP_SYNC_BUSY, RIP_SYNC_TIMEOUT, RIP_SYNC_OWNER_DIED, RIP_SYNC_NOT_HELD,
        RIP_SYNC_OVERFLOW, RIP_SYNC_CORRUPT
    enum:
        RIP_SYNC_LOCK, RIP_SYNC_SEMAPHORE, RIP_SYNC_EVENT, RIP_SYNC_VALUE_MASK, RIP_SYNC_FLAG_UNDO, RIP_SYNC_UNDO_SLOTS
    uint64_t rip_sync_segment_size()
    int rip_sync_format(void *base, uint64_t size, uint32_t kind, uint32_t value, uint32_t max_value, uint32_t flags,
                        int32_t creator_pid)
    rip_sync_status rip_sync_attach(void *base, uint64_t size, uint32_t kind, rip_sync **sync, const char **why)
    rip_sync_status rip_lock_try(rip_sync *s)
    struct rip_sync_spin:
        pass
    void rip_sync_spin_init(rip_sync_spin *spin)
    rip_sync_status rip_lock_spin(rip_sync *s, rip_sync_spin *spin)
    rip_sync_status rip_lock_wait(rip_sync *s, const timespec *deadline)
    rip_sync_status rip_lock_take_from_dead(rip_sync *s)
    rip_sync_status rip_lock_release(rip_sync *s)
    int32_t rip_lock_holder_pid(rip_sync *s)
    rip_sync_status rip_sem_try(rip_sync *s)
    rip_sync_status rip_sem_wait(rip_sync *s, const timespec *deadline)
    rip_sync_status rip_sem_spin(rip_sync *s, rip_sync_spin *spin)
    rip_sync_status rip_sem_release(rip_sync *s, uint32_t n)
    uint32_t rip_sem_value(rip_sync *s)
    uint32_t rip_sem_recover(rip_sync *s)
    void rip_event_set(rip_sync *s)
    void rip_event_clear(rip_sync *s)
    int rip_event_is_set(rip_sync *s)
    rip_sync_status rip_event_wait(rip_sync *s, const timespec *deadline, uint32_t *since)
    rip_sync_status rip_event_spin(rip_sync *s, rip_sync_spin *spin, uint32_t *since)

WAIT_SLICE = 0.05           # seconds between signal checks while blocked
HOLDER_CHECK_EVERY = 0.1    # seconds between a lock waiter's looks at whether the holder lives
SEM_VALUE_MAX = RIP_SYNC_VALUE_MASK
UNDO_PROCESSES = RIP_SYNC_UNDO_SLOTS  # processes an undo semaphore counts units for at a time


class OwnerDiedWarning(RuntimeWarning):
    """A Lock was acquired from a holder that died holding it: the state it
    protects may be half-updated.  Pass ``on_owner_death`` to repair it instead."""


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef inline void _to_timespec(double t, timespec *ts) noexcept nogil:
    ts.tv_sec = <long>t
    ts.tv_nsec = <long>((t - <double>ts.tv_sec) * 1e9)


cdef double _deadline(bint block, object timeout) except? -2:
    """-1: no deadline.  block=False or timeout <= 0: now (one try), as in
    multiprocessing; threading's "forever" (-1) is accepted too."""
    if not block:
        return _now()
    if timeout is None or timeout == -1:
        return -1.0
    t = float(timeout)
    return _now() + (t if t > 0 else 0.0)


include "_sync_primitive.pxi"


cdef class Lock(_Primitive):
    """A lock shared by processes (and threads), like ``multiprocessing.Lock``,
    that survives a holder's death.

    ``Lock()`` creates one (``name=`` to give it a name others can
    ``Lock.attach(name)``); passing it to a child process attaches it there.
    Any thread or process may release it, as with multiprocessing's.  A waiter
    finds a dead holder within about HOLDER_CHECK_EVERY seconds and takes the
    lock over: that acquisition sets ``owner_died`` and calls
    ``on_owner_death(lock)`` (with the lock held, to repair what it protects)
    or, without one, warns with OwnerDiedWarning.
    """
    cdef public object on_owner_death
    cdef readonly bint owner_died
    cdef rip_sync_spin _spin  # this handle's spin budget (not shared)

    def __cinit__(self):
        rip_sync_spin_init(&self._spin)

    def __init__(self, name=None, on_owner_death=None):
        self._create(RIP_SYNC_LOCK, 0, 0, name)
        self.on_owner_death = on_owner_death

    @classmethod
    def attach(cls, name, on_owner_death=None):
        self = cls._attached(SegmentHandle.open(name))
        self.on_owner_death = on_owner_death
        return self

    @classmethod
    def _attached(cls, handle):
        cdef Lock self = cls.__new__(cls)
        self._join_handle(RIP_SYNC_LOCK, handle)
        return self

    def acquire(self, bint block=True, timeout=None, *, blocking=None):
        """True once held; False if `block` is false or `timeout` passes first.
        (`blocking=` is threading's name for `block`.)"""
        cdef rip_sync *s = self._open()
        if blocking is not None:
            block = blocking
        if rip_lock_try(s) == RIP_SYNC_OK:
            self.owner_died = False
            return True
        return self._acquire_slow(s, _deadline(block, timeout))

    cdef object _acquire_slow(self, rip_sync *s, double deadline):
        cdef double until, began = _now(), checked
        cdef timespec ts
        cdef rip_sync_status st
        # A holder in another process usually lets go within microseconds:
        # watch the word a while before sleeping (csrc/sync.h), with the GIL
        # held - dropping and retaking it would cost more than a hand-off.
        if (deadline < 0 or deadline > began) and rip_lock_spin(s, &self._spin) == RIP_SYNC_OK:
            self.owner_died = False
            return True
        # A holder that died never releases: look for that every
        # HOLDER_CHECK_EVERY seconds, first at once if this call will not wait
        # that long (a non-blocking one looks once).  Not at once otherwise:
        # asking the kernel about the holder costs several system calls,
        # more than most waits for a live one last.
        checked = -1.0 if deadline >= 0 and deadline - began < HOLDER_CHECK_EVERY else began
        while True:
            if checked < 0 or _now() - checked >= HOLDER_CHECK_EVERY:
                checked = _now()
                if rip_lock_take_from_dead(s) == RIP_SYNC_OWNER_DIED:
                    self._owner_died()
                    return True
            if self._sleep(deadline, &until):
                return False
            _to_timespec(until, &ts)
            with nogil:
                st = rip_lock_wait(s, &ts)
            if st == RIP_SYNC_OK:
                self.owner_died = False
                return True

    cdef _owner_died(self):
        self.owner_died = True
        if self.on_owner_death is not None:
            self.on_owner_death(self)
        else:
            warnings.warn(f"lock {self.name!r}: its holder died holding it; the state it protects "
                          f"may be inconsistent", OwnerDiedWarning, stacklevel=3)

    def release(self):
        """Release it (from any thread or process); ValueError if not held."""
        if rip_lock_release(self._open()) == RIP_SYNC_NOT_HELD:
            raise ValueError("release of an unlocked lock")

    def locked(self):
        return rip_lock_holder_pid(self._open()) != 0

    @property
    def holder_pid(self):
        """The pid of the process holding it, or None."""
        pid = rip_lock_holder_pid(self._open())
        return pid or None

    def __enter__(self):
        cdef rip_sync *s = self._open()
        if rip_lock_try(s) == RIP_SYNC_OK:  # the uncontended path, without a method call
            self.owner_died = False
            return True
        return self._acquire_slow(s, -1.0)

    def __exit__(self, *exc):
        if rip_lock_release(self._open()) == RIP_SYNC_NOT_HELD:
            raise ValueError("release of an unlocked lock")

    def __repr__(self):
        # multiprocessing's form, with the holder's pid for its process name.
        if self._s == NULL:
            return f"<Lock({self.name!r} closed)>"
        return f"<Lock(owner={self.holder_pid})>"


cdef class Semaphore(_Primitive):
    """A counting semaphore shared by processes, like ``multiprocessing.Semaphore``
    (``BoundedSemaphore`` refuses releases beyond its initial value).

    With ``undo=True`` each process's units are counted (for up to
    UNDO_PROCESSES processes at a time), and a waiter gives back, within
    about HOLDER_CHECK_EVERY seconds, the units of a process that died
    holding them - System V's SEM_UNDO, for the pattern where each process
    releases what it acquired.  Without it, units a dead process held are
    gone with it."""
    cdef readonly bint bounded
    cdef readonly bint undo
    cdef rip_sync_spin _spin  # this handle's spin budget (not shared)

    def __cinit__(self):
        rip_sync_spin_init(&self._spin)

    def __init__(self, value=1, name=None, *, undo=False):
        self._setup(value, False, name, undo)

    cdef _setup(self, value, bint bounded, name, bint undo):
        if not isinstance(value, int) or value < 0:
            raise ValueError("semaphore initial value must be an int >= 0")
        if value > SEM_VALUE_MAX:
            raise ValueError(f"semaphore initial value must be at most {SEM_VALUE_MAX}")
        self.bounded, self.undo = bounded, undo
        self._create(RIP_SYNC_SEMAPHORE, value, value if bounded else SEM_VALUE_MAX, name,
                     RIP_SYNC_FLAG_UNDO if undo else 0)

    @classmethod
    def attach(cls, name):
        return cls._attached(SegmentHandle.open(name))

    @classmethod
    def _attached(cls, handle):
        cdef Semaphore self = cls.__new__(cls)
        self._join_handle(RIP_SYNC_SEMAPHORE, handle)
        self.bounded = self._s.max_value != SEM_VALUE_MAX
        self.undo = bool(self._s.flags & RIP_SYNC_FLAG_UNDO)
        return self

    def acquire(self, bint block=True, timeout=None, *, blocking=None):
        cdef rip_sync *s = self._open()
        cdef double deadline, until, checked = -1.0
        cdef timespec ts
        cdef rip_sync_status st
        if blocking is not None:
            block = blocking
        if rip_sem_try(s) == RIP_SYNC_OK:
            return True
        deadline = _deadline(block, timeout)
        # Spin a while before sleeping (csrc/sync.h), without the GIL: the
        # release may come from one of our own threads.
        if deadline < 0 or deadline > _now():
            with nogil:
                st = rip_sem_spin(s, &self._spin)
            if st == RIP_SYNC_OK:
                return True
        while True:
            # Units of processes that died holding them come back (undo only).
            if self.undo and (checked < 0 or _now() - checked >= HOLDER_CHECK_EVERY):
                checked = _now()
                if rip_sem_recover(s) and rip_sem_try(s) == RIP_SYNC_OK:
                    return True
            if self._sleep(deadline, &until):
                return False
            _to_timespec(until, &ts)
            with nogil:
                st = rip_sem_wait(s, &ts)
            if st == RIP_SYNC_OK:
                return True

    def release(self, n=1):
        if n < 1:
            raise ValueError("n must be one or more")
        if rip_sem_release(self._open(), n) == RIP_SYNC_OVERFLOW:
            raise ValueError("semaphore released too many times" if self.bounded
                             else f"semaphore value would exceed {SEM_VALUE_MAX}")

    def get_value(self):
        return rip_sem_value(self._open())

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def __repr__(self):
        # multiprocessing's form.
        if self._s == NULL:
            return f"<{type(self).__name__}({self.name!r} closed)>"
        if self.bounded:
            return f"<{type(self).__name__}(value={self.get_value()}, maxvalue={self._s.max_value})>"
        return f"<{type(self).__name__}(value={self.get_value()})>"


cdef class BoundedSemaphore(Semaphore):
    def __init__(self, value=1, name=None, *, undo=False):
        self._setup(value, True, name, undo)


cdef class Event(_Primitive):
    """An event flag shared by processes, like ``multiprocessing.Event``."""
    cdef rip_sync_spin _spin  # this handle's spin budget (not shared)

    def __cinit__(self):
        rip_sync_spin_init(&self._spin)

    def __init__(self, name=None):
        self._create(RIP_SYNC_EVENT, 0, 0, name)

    @classmethod
    def attach(cls, name):
        return cls._attached(SegmentHandle.open(name))

    @classmethod
    def _attached(cls, handle):
        cdef Event self = cls.__new__(cls)
        self._join_handle(RIP_SYNC_EVENT, handle)
        return self

    def is_set(self):
        return bool(rip_event_is_set(self._open()))

    def set(self):
        rip_event_set(self._open())

    def clear(self):
        rip_event_clear(self._open())

    def wait(self, timeout=None):
        """True once the flag is set (or was set meanwhile, even if cleared
        again); False if `timeout` passes first."""
        cdef rip_sync *s = self._open()
        cdef double deadline, until
        cdef timespec ts
        cdef rip_sync_status st
        cdef uint32_t since = 0xFFFFFFFF
        cdef bint expired
        if rip_event_is_set(s):
            return True
        deadline = _deadline(True, timeout)
        # Spin a while before sleeping (csrc/sync.h), without the GIL: the
        # set() may come from one of our own threads.
        if deadline < 0 or deadline > _now():
            with nogil:
                st = rip_event_spin(s, &self._spin, &since)
            if st == RIP_SYNC_OK:
                return True
        while True:
            # The last look, once the deadline passed, is a wait that has
            # already timed out: it still sees a set() made meanwhile.
            expired = self._sleep(deadline, &until)
            _to_timespec(_now() if expired else until, &ts)
            with nogil:
                st = rip_event_wait(s, &ts, &since)
            if st == RIP_SYNC_OK:
                return True
            if expired:
                return False

    def __repr__(self):
        # multiprocessing's form, "<Event at ... set|unset>", which code may parse.
        if self._s == NULL:
            return f"<Event at {self.name!r} closed>"
        return f"<Event at {self.name!r} {'set' if self.is_set() else 'unset'}>"


def _primitive_from_ref(cls, ref):
    return cls._attached(open_ref(ref))


# multiprocessing's picklers (and ringipc's) may hand an anonymous primitive's
# descriptor to another process; plain pickle may not (see __reduce__).
for _kind in (Lock, Semaphore, BoundedSemaphore, Event):
    ForkingPickler.register(_kind, _kind._reduce_for_multiprocessing)


def segment_creator_pid(name):
    """The creator pid recorded in a synchronisation primitive's segment
    (any kind); CorruptSegment if it is not one."""
    cdef rip_sync *s = NULL
    cdef const char *why = NULL
    seg_name = _segment.normalize_name(name)
    mapping, size = _segment.open_existing(seg_name)
    if mapping is None:
        raise CorruptSegment(f"{seg_name!r}: segment is empty")
    cdef Py_buffer view
    PyObject_GetBuffer(mapping, &view, PyBUF_WRITABLE)
    try:
        for kind in (RIP_SYNC_LOCK, RIP_SYNC_SEMAPHORE, RIP_SYNC_EVENT):
            if rip_sync_attach(view.buf, <uint64_t>view.len, kind, &s, &why) == RIP_SYNC_OK:
                return s.creator_pid
        raise CorruptSegment(f"{seg_name!r}: not a synchronisation primitive")
    finally:
        PyBuffer_Release(&view)
        mapping.close()
