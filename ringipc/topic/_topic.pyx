# cython: language_level=3
"""Broadcast topics: every subscriber receives every message (csrc/topic_*.c).

Waits run in slices of WAIT_SLICE seconds with the GIL released, checking
signals between slices, against a CLOCK_MONOTONIC deadline; copies of at least
NOGIL_COPY_THRESHOLD bytes run without the GIL.  See docs/topic.md.
"""
import os
import queue
import weakref

cimport cython

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_FillInfo, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from posix.unistd cimport getpid

cdef extern from "<sched.h>" nogil:
    int sched_yield()

cimport ringipc.topic._ctopic as c

from multiprocessing.reduction import ForkingPickler

from ..core import _segment
from ..core._segment_handle import SegmentHandle, open_ref
from ..mp import pickling
from ..errors import BufferTooShort, ChannelClosed, CorruptSegment, MessageTooLarge, RingError

NOGIL_COPY_THRESHOLD = 64 * 1024
WAIT_SLICE = 0.05        # seconds between signal checks while blocked
RECOVERY_AFTER = 0.2     # seconds a publisher waits before looking for dead processes
RECOVERY_EVERY = 0.1     # seconds between its looks while the stall lasts
DEFAULT_SPIN = 4000
BELL_PREFIX = c.RIP_BELL_PREFIX.decode()  # as ringipc.core.doorbell's: one mechanism (csrc/bell.c)
MAX_HANDLES = c.TP_MAX_SLOTS
POLICIES = {"lossless": c.TP_LOSSLESS, "drop-oldest": c.TP_DROP_OLDEST, "latest": c.TP_LATEST}
_POLICY_NAMES = {v: k for k, v in POLICIES.items()}
WAIT_BACKEND = c.rip_wait_backend_name().decode()  # "futex" or "sem" (RINGIPC_WAIT, setup.py)
CHAOS_BUILD = bool(c.rip_chaos_build())  # RINGIPC_CHAOS=1: random pauses inside the protocol

cdef uint64_t _NOGIL_COPY = NOGIL_COPY_THRESHOLD


class MessageOverwritten(RingError, BufferError):
    """A zero-copy view of a drop-oldest or latest-value topic was overwritten by
    a publisher while it was open: what was read through it may be torn."""


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef inline void _copy(void *dst, const void *src, uint64_t n):
    if n >= _NOGIL_COPY:
        with nogil:
            memcpy(dst, src, n)
    else:
        memcpy(dst, src, n)


def _cpus_available():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


cdef double _deadline(object timeout) except? -2:
    if timeout is None:
        return -1.0
    t = float(timeout)
    return _now() + (t if t > 0 else 0.0)


cdef int _raise(c.tp_status st, str name, uint64_t length=0, uint64_t limit=0) except -1:
    if st == c.TP_EMPTY:
        raise queue.Empty
    if st == c.TP_FULL or st == c.TP_BUSY:
        raise queue.Full
    if st == c.TP_TOO_BIG:
        raise MessageTooLarge(f"message of {length} bytes exceeds topic {name!r}'s max_message_size of "
                              f"{limit} bytes (half its capacity); create the topic with a larger capacity")
    if st == c.TP_CORRUPT:
        raise CorruptSegment(f"topic {name!r}: shared memory breaks the topic's invariants "
                             f"(a record length, tag or position is out of range); nothing was read")
    if st == c.TP_NO_SLOT:
        raise RingError(f"topic {name!r}: more than {MAX_HANDLES} publishers and subscribers are open")
    raise RingError(f"topic {name!r}: unexpected status {<int>st}")


@cython.no_gc_clear
cdef class Topic:
    """A broadcast ring in POSIX shared memory: every subscriber receives every
    message, in publish order.

    ``Topic(name=None, capacity=1 MiB, policy="lossless")`` creates the segment
    (unlinked by ``close()``, the context manager or interpreter exit in the
    creating process); ``Topic.attach(name)`` joins it.  ``policy`` decides what
    happens when a subscriber falls behind: ``"lossless"`` (publishers wait for
    the slowest live subscriber), ``"drop-oldest"`` (publishers never wait; a
    lapped subscriber skips ahead and counts what it missed in ``missed``) or
    ``"latest"`` (subscribers always read the newest complete message).
    """
    cdef readonly str name
    cdef object _mapping
    cdef object _segment_handle
    cdef Py_buffer _view
    cdef bint _has_view
    cdef int _creator_pid
    cdef c.tp_handle _h
    cdef object _handles

    def __cinit__(self):
        self._handles = weakref.WeakSet()

    def __init__(self, name=None, capacity=1 << 20, policy="lossless"):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {sorted(POLICIES)}, not {policy!r}")
        if not isinstance(capacity, int) or capacity <= 0:
            raise ValueError(f"capacity must be a positive int, not {capacity!r}")
        cdef uint64_t ncells = c.tp_cells_for_capacity(capacity)
        if ncells == 0:
            raise ValueError(f"capacity {capacity} is larger than a topic can be")
        size = c.tp_segment_size(ncells)
        handle = SegmentHandle.create(size, name)
        try:
            self._map(handle)
            if c.tp_format(self._view.buf, size, ncells, POLICIES[policy], os.getpid()) != c.TP_OK:
                raise ValueError(f"cannot format a topic of capacity {capacity}")
            self._attach_view()
        except BaseException:
            self._unmap()
            handle.release()
            raise
        self._creator_pid = os.getpid()

    @classmethod
    def attach(cls, name):
        """Join the existing named topic `name`; validates the header first."""
        return cls._attached(SegmentHandle.open(name))

    @classmethod
    def _attached(cls, handle):
        cdef Topic self = cls.__new__(cls)
        if handle.mapping is None:
            handle.release(reap=False)
            raise CorruptSegment(f"topic {handle.name!r}: segment is empty (its creator died while creating it?)")
        self._map(handle)
        try:
            self._attach_view()
        except BaseException:
            self._unmap()
            handle.release(reap=False)
            raise
        return self

    cdef _map(self, object handle):
        self.name = handle.name
        self._segment_handle = handle
        self._mapping = handle.mapping
        PyObject_GetBuffer(self._mapping, &self._view, PyBUF_WRITABLE)
        self._has_view = True

    cdef _attach_view(self):
        cdef const char *why = NULL
        if c.tp_attach(&self._h, self._view.buf, <uint64_t>self._view.len, &why) != c.TP_OK:
            reason = why.decode() if why != NULL else "invalid header"
            raise CorruptSegment(f"topic {self.name!r}: {reason}")

    cdef _unmap(self):
        if self._has_view:
            PyBuffer_Release(&self._view)
            self._has_view = False
        if self._mapping is not None:
            try:
                self._mapping.close()
            except BufferError:
                pass  # a view is still exported: the mapping goes with it
            self._mapping = None
            self._segment_handle.mapping = None

    def __dealloc__(self):
        if self._has_view:
            PyBuffer_Release(&self._view)
            self._has_view = False
        if self._segment_handle is not None and SegmentHandle is not None:
            try:
                self._segment_handle.release()
            except OSError:
                pass

    cdef int _check_open(self) except -1:
        if not self._has_view:
            raise ChannelClosed(f"topic {self.name!r} is closed")
        return 0

    def __reduce__(self):
        # Plain pickle: by name, or (anonymous) only into a child being started.
        self._check_open()
        return (_topic_from_ref, (self._segment_handle.plain_reduce_args(f"topic {self.name!r}"),))

    def _reduce_for_multiprocessing(self):
        self._check_open()
        return (_topic_from_ref, (self._segment_handle.reduce_args(f"topic {self.name!r}"),))

    # -- handles ------------------------------------------------------------
    def publisher(self):
        """A new publisher handle (publishers serialise among themselves)."""
        self._check_open()
        cdef Publisher p = Publisher.__new__(Publisher)
        p._setup(self)
        cdef c.tp_status st = c.tp_open_publisher(&p._h)
        if st != c.TP_OK:
            _raise(st, self.name)
        self._handles.add(p)
        return p

    def subscribe(self, history=0, timeout=None):
        """A new subscriber.  ``history=N`` starts at the last N messages still
        retained (``0``: only messages published from now on).  For a
        latest-value topic any ``history > 0`` makes the current value
        readable at once."""
        self._check_open()
        if history is None or history < 0:
            raise ValueError(f"history must be an int >= 0, not {history!r}")
        cdef Subscriber s = Subscriber.__new__(Subscriber)
        s._setup(self)
        s._join(min(int(history), 1 << 62), 0, 0, 0, False, timeout)
        self._handles.add(s)
        return s

    # -- properties ---------------------------------------------------------
    @property
    def policy(self):
        return _POLICY_NAMES[self._h.policy]

    @property
    def capacity(self):
        """Bytes in the data area (a power of two, at least the capacity asked for)."""
        return self._h.ncells * c.TP_CELL

    @property
    def max_message_size(self):
        """The largest message: half the capacity."""
        return self._h.max_message

    @property
    def subscribers(self):
        """Subscribers that hold a slot now (live or not yet found dead)."""
        self._check_open()
        return c.tp_live_subscribers(&self._h)

    @property
    def closed(self):
        return not self._has_view

    @property
    def creator(self):
        return self._creator_pid == os.getpid()

    def recover(self):
        """Free the publisher lock and the slots of dead processes now; returns
        how many were freed (publishers also do this by themselves when stalled)."""
        self._check_open()
        c.tp_forked(&self._h)
        return c.tp_recover(&self._h)

    def close(self):
        """Close every handle opened from this object, unmap, and (in the creating
        process) unlink the name.  Idempotent."""
        cdef _Handle h
        busy = False
        for h in list(self._handles):
            busy |= h._waiting > 0
            h.close()
        if self._segment_handle is not None:
            self._segment_handle.release()
        if not busy:
            self._unmap()

    def unlink(self):
        """Remove the name now (handles keep working); no-op if already gone
        or anonymous."""
        self._segment_handle.unlink()

    def _debug_segment_path(self):
        """A path that opens this topic's segment here (named or anonymous)."""
        return self._segment_handle.path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if not self._has_view else f"capacity={self.capacity}"
        return f"<ringipc.Topic {self.name!r} policy={_POLICY_NAMES.get(self._h.policy)!r} {state}>"


# The handles live in their own files, one class each (textually included:
# they share this module's cdef types and helpers).
include "_topic_handle.pxi"
include "_topic_publisher.pxi"
include "_topic_subscriber.pxi"
include "_topic_view.pxi"
include "_topic_support.pxi"
