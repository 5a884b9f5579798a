# cython: language_level=3
"""Broadcast topics: every subscriber receives every message (csrc/topic.c).

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
MAX_HANDLES = c.TP_MAX_SLOTS
POLICIES = {"lossless": c.TP_LOSSLESS, "drop-oldest": c.TP_DROP_OLDEST, "latest": c.TP_LATEST}
_POLICY_NAMES = {v: k for k, v in POLICIES.items()}

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


@cython.no_gc_clear
cdef class _Handle:
    cdef Topic _topic
    cdef c.tp_handle _h
    cdef bint _open
    cdef bint _busy
    cdef bint _view_open
    cdef int _waiting
    cdef double _stalled_since
    cdef double _recovered_at
    cdef public uint32_t spin
    cdef object __weakref__

    def __cinit__(self):
        self._stalled_since = -1.0
        self._recovered_at = -1.0
        self.spin = DEFAULT_SPIN if _cpus_available() > 1 else 0

    cdef _setup(self, Topic topic):
        cdef const char *why = NULL
        self._topic = topic
        if c.tp_attach(&self._h, topic._view.buf, <uint64_t>topic._view.len, &why) != c.TP_OK:
            raise CorruptSegment(f"topic {topic.name!r}: {why.decode() if why != NULL else 'invalid header'}")
        self._open = True

    @property
    def name(self):
        return self._topic.name

    @property
    def topic(self):
        return self._topic

    @property
    def closed(self):
        return not self._open

    cdef int _check_open(self) except -1:
        if not self._open or not self._topic._has_view:
            raise ChannelClosed(f"topic {self._topic.name!r}: this handle is closed")
        return 0

    cdef int _enter(self) except -1:
        self._check_open()
        while self._busy:  # another thread of this process copies without the GIL
            with nogil:
                sched_yield()
            self._check_open()
        if self._view_open:
            raise RingError(f"topic {self._topic.name!r}: release the open view before using this handle again")
        self._busy = True
        if c.tp_forked(&self._h):
            try:
                self._after_fork()
            except BaseException:
                self._busy = False
                raise
        return 0

    cdef int _after_fork(self) except -1:
        return 0

    cdef int _note_stall(self, double now) except -1:
        if self._stalled_since < 0:
            self._stalled_since = now
            return 0
        if now - self._stalled_since < RECOVERY_AFTER or now - self._recovered_at < RECOVERY_EVERY:
            return 0
        self._recovered_at = now
        with nogil:
            c.tp_recover(&self._h)
        return 0

    cdef int _wait(self, int kind, double deadline) except -1:
        """One slice of waiting: kind 0 data, else the publisher status to wait
        out (TP_FULL or TP_BUSY).  Returns 1 once the deadline has passed."""
        cdef timespec ts
        cdef double now = _now(), until
        cdef c.tp_status st
        if kind != 0:
            self._note_stall(now)
        if deadline >= 0 and now >= deadline:
            return 1
        until = now + WAIT_SLICE
        if deadline >= 0 and deadline < until:
            until = deadline
        ts.tv_sec = <long>until
        ts.tv_nsec = <long>((until - <double>ts.tv_sec) * 1e9)
        self._waiting += 1
        with nogil:
            if kind == 0:
                st = c.tp_wait_readable(&self._h, &ts, self.spin)
            else:
                st = c.tp_wait_writable(&self._h, <c.tp_status>kind, &ts, self.spin)
        self._waiting -= 1
        if st == c.TP_NO_SLOT:
            _raise(st, self._topic.name)
        PyErr_CheckSignals()
        self._check_open()
        return 0

    def close(self):
        """Give up this handle's slot (a lossless publisher stops waiting for it)."""
        if self._open:
            self._open = False
            if self._topic._has_view:
                c.tp_close(&self._h)

    def __dealloc__(self):
        if self._open and self._topic is not None and self._topic._has_view:
            self._open = False
            c.tp_close(&self._h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


cdef class Publisher(_Handle):
    """Publishes messages to a topic: ``send_bytes`` / ``send``."""

    cdef int _after_fork(self) except -1:
        cdef c.tp_status st = c.tp_open_publisher(&self._h)
        if st != c.TP_OK:
            _raise(st, self._topic.name)
        return 0

    def __reduce__(self):
        self._check_open()
        return (_publisher_of, (self._topic,))

    cdef int _write(self, const char *src, uint64_t length, bint block, object timeout) except -1:
        cdef void *dst = NULL
        cdef c.tp_status st
        cdef double deadline = -2.0
        while True:
            self._enter()
            st = c.tp_write_begin(&self._h, length, &dst)
            if st == c.TP_OK:
                break
            self._busy = False
            if (st != c.TP_FULL and st != c.TP_BUSY) or not block:
                if st == c.TP_FULL or st == c.TP_BUSY:
                    self._note_stall(_now())
                _raise(st, self._topic.name, length, self._h.max_message)
            if deadline == -2.0:
                deadline = _deadline(timeout)
            if self._wait(<int>st, deadline):
                raise queue.Full
        self._stalled_since = -1.0
        try:
            _copy(dst, src, length)
        except BaseException:
            c.tp_write_abort(&self._h)
            self._busy = False
            raise
        c.tp_write_commit(&self._h)
        self._busy = False
        return 0

    def send_bytes(self, data, offset=0, size=None, bint block=True, timeout=None):
        """Publish one message (any bytes-like object; ``offset``/``size`` select
        a part of it, as in multiprocessing).  A lossless topic blocks while the
        slowest live subscriber holds the space; raises queue.Full if ``block``
        is false or ``timeout`` passes first."""
        cdef Py_buffer buf
        cdef Py_ssize_t off, n
        PyObject_GetBuffer(data, &buf, PyBUF_SIMPLE)
        try:
            off = offset
            if off < 0 or off > buf.len:
                raise ValueError("offset is out of range")
            n = buf.len - off if size is None else size
            if n < 0 or off + n > buf.len:
                raise ValueError("size is out of range")
            self._write(<const char *>buf.buf + off, <uint64_t>n, block, timeout)
        finally:
            PyBuffer_Release(&buf)

    def send(self, obj, bint block=True, timeout=None):
        """Publish a picklable object."""
        self.send_bytes(pickling.dumps(obj), block=block, timeout=timeout)

    def __repr__(self):
        return f"<ringipc.topic.Publisher {self._topic.name!r}{'' if self._open else ' closed'}>"


cdef class Subscriber(_Handle):
    """Receives every message of a topic from where it joined: ``recv_bytes``,
    ``recv_bytes_into``, ``recv_view``, ``recv``, ``poll``.

    ``missed`` counts the messages this subscriber skipped because publishers
    overwrote them first (drop-oldest), or newer values replaced them
    (latest); it stays 0 on a lossless topic.  ``seq`` is the sequence number
    (publish order, from 0) of the last message received."""

    cdef int _join(self, uint64_t history, uint64_t pos, uint64_t expected, uint64_t seen,
                   bint at, object timeout) except -1:
        cdef c.tp_status st
        cdef double deadline = _deadline(timeout)
        while True:
            if at:
                st = c.tp_subscribe_at(&self._h, pos, expected, seen)
            else:
                st = c.tp_subscribe(&self._h, history)
            if st == c.TP_OK:
                self._stalled_since = -1.0
                return 0
            if st != c.TP_BUSY:
                _raise(st, self._topic.name)
            if self._wait(<int>c.TP_BUSY, deadline):
                raise TimeoutError(f"topic {self._topic.name!r}: could not join within the timeout")

    cdef int _after_fork(self) except -1:
        # The slot was the parent's: join again at this copy's position.
        self._join(0, self._h.pos, self._h.expected, self._h.seen_last, True, None)
        return 0

    def __reduce__(self):
        self._check_open()
        return (_subscriber_at, (self._topic, self._h.pos, self._h.expected, self._h.seen_last,
                                 self._h.missed))

    @property
    def missed(self):
        """Messages skipped so far (overwritten before they were read, or replaced by newer values)."""
        return self._h.missed

    @property
    def _torn_copies(self):
        """Copies this subscriber threw away because a publisher overwrote them
        meanwhile (each was read again or counted in ``missed``): for tests."""
        return self._h.torn

    @property
    def seq(self):
        """Sequence number (publish order, from 0) of the last message received;
        before the first, one less than the first this subscriber can receive."""
        return <long long>self._h.expected - 1

    cdef int _begin(self, const void **src, uint64_t *n, bint block, object timeout) except -1:
        """Finds the next message; on return the handle is busy (reading)."""
        cdef c.tp_status st
        cdef double deadline = -2.0
        while True:
            self._enter()
            st = c.tp_read_begin(&self._h, src, n)
            if st == c.TP_OK:
                return 0
            self._busy = False
            if st != c.TP_EMPTY or not block:
                _raise(st, self._topic.name)
            if deadline == -2.0:
                deadline = _deadline(timeout)
            if self._wait(0, deadline):
                raise queue.Empty

    def recv_bytes(self, bint block=True, timeout=None):
        """The next message as bytes; raises queue.Empty if ``block`` is false or
        ``timeout`` passes first."""
        cdef const void *src = NULL
        cdef uint64_t n = 0
        cdef c.tp_status st
        while True:
            self._begin(&src, &n, block, timeout)
            try:
                out = PyBytes_FromStringAndSize(NULL, n)
                _copy(PyBytes_AS_STRING(out), src, n)
                st = c.tp_read_end(&self._h)
            finally:
                self._busy = False
            if st == c.TP_OK:
                return out
            # TP_TORN: overwritten while copying; the next one is read instead.

    def recv_bytes_into(self, buffer, offset=0, bint block=True, timeout=None):
        """Copy the next message into ``buffer`` at ``offset``; returns its length.
        Raises BufferTooShort (with the message in ``args[0]``) if it does not fit."""
        cdef Py_buffer buf
        cdef const void *src = NULL
        cdef uint64_t n = 0
        cdef c.tp_status st
        cdef Py_ssize_t off = offset
        try:
            PyObject_GetBuffer(buffer, &buf, PyBUF_WRITABLE)
        except BufferError as exc:
            raise TypeError(f"recv_bytes_into needs a writable contiguous buffer: {exc}") from None
        try:
            if off < 0 or off > buf.len:
                raise ValueError("offset out of range")
            while True:
                self._begin(&src, &n, block, timeout)
                try:
                    if n > <uint64_t>(buf.len - off):
                        out = PyBytes_FromStringAndSize(<const char *>src, n)
                        st = c.tp_read_end(&self._h)
                        if st == c.TP_OK:
                            raise BufferTooShort(out)
                        continue
                    _copy(<char *>buf.buf + off, src, n)
                    st = c.tp_read_end(&self._h)
                finally:
                    self._busy = False
                if st == c.TP_OK:
                    return <Py_ssize_t>n
        finally:
            PyBuffer_Release(&buf)

    def recv(self, bint block=True, timeout=None):
        """The next message, unpickled."""
        return pickling.loads(self.recv_bytes(block, timeout))

    def recv_view(self, bint block=True, timeout=None):
        """The next message as a zero-copy view of shared memory (a context
        manager exporting the buffer protocol).  On a lossless topic the view
        holds publishers back until released, so its bytes never change.  On
        drop-oldest and latest topics publishers do not wait: releasing the
        view checks, seqlock style, that the record was not overwritten while
        it was open, and raises MessageOverwritten if it may have been."""
        cdef const void *src = NULL
        cdef uint64_t n = 0
        self._begin(&src, &n, block, timeout)
        cdef TopicView v = TopicView.__new__(TopicView)
        v._sub = self
        v._data = src
        v._length = n
        v._active = True
        v._seq = self._h.rd_seq
        self._view_open = True
        self._busy = False
        return v

    def poll(self, timeout=0.0):
        """True when a message is ready; waits up to ``timeout`` seconds (None: for ever)."""
        cdef double deadline = _deadline(timeout)
        self._enter()
        self._busy = False
        while True:
            if c.tp_readable(&self._h):
                return True
            if self._wait(0, deadline):
                return bool(c.tp_readable(&self._h))

    def __repr__(self):
        return (f"<ringipc.topic.Subscriber {self._topic.name!r} seq={self.seq} missed={self.missed}"
                f"{'' if self._open else ' closed'}>")


cdef class TopicView:
    """One message of a topic, in place.  Use as a context manager or call
    ``release()``; ``seq`` is its sequence number."""
    cdef Subscriber _sub
    cdef const void *_data
    cdef uint64_t _length
    cdef uint64_t _seq
    cdef bint _active
    cdef int _exports

    def __getbuffer__(self, Py_buffer *buffer, int flags):
        if not self._active:
            raise ValueError("this topic view was released")
        PyBuffer_FillInfo(buffer, self, <void *>self._data, <Py_ssize_t>self._length, 1, flags)
        self._exports += 1

    def __releasebuffer__(self, Py_buffer *buffer):
        self._exports -= 1

    def __len__(self):
        return self._length

    @property
    def _torn_copies(self):
        """Copies this subscriber threw away because a publisher overwrote them
        meanwhile (each was read again or counted in ``missed``): for tests."""
        return self._h.torn

    @property
    def seq(self):
        return self._seq

    @property
    def active(self):
        return self._active

    def tobytes(self):
        if not self._active:
            raise ValueError("this topic view was released")
        return PyBytes_FromStringAndSize(<const char *>self._data, self._length)

    def release(self):
        """Finish the read.  Raises MessageOverwritten if a publisher overwrote
        the record meanwhile (never on a lossless topic)."""
        if not self._active:
            return
        if self._exports:
            raise BufferError("release every memoryview of this topic view first")
        self._active = False
        sub = self._sub
        sub._view_open = False
        if not sub._open or not sub._topic._has_view:
            return
        if c.tp_read_end(&sub._h) != c.TP_OK:
            raise MessageOverwritten(f"topic {sub._topic.name!r}: message {self._seq} was overwritten "
                                     f"while its view was open; what was read from it may be torn")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.release()
        else:
            try:
                self.release()
            except (MessageOverwritten, BufferError):
                pass  # the exception in flight says more
        return False

    def __dealloc__(self):
        if self._active and self._sub is not None:
            self._active = False
            self._sub._view_open = False
            if self._sub._open and self._sub._topic._has_view:
                c.tp_read_end(&self._sub._h)


def _topic_from_ref(ref):
    return Topic._attached(open_ref(ref))


# multiprocessing's picklers (and ringipc's) may hand an anonymous topic's
# descriptor to another process; plain pickle may not (see Topic.__reduce__).
ForkingPickler.register(Topic, Topic._reduce_for_multiprocessing)


def _publisher_of(Topic topic):
    return topic.publisher()


def _subscriber_at(Topic t, pos, expected, seen_last, missed):
    cdef Subscriber s = Subscriber.__new__(Subscriber)
    s._setup(t)
    s._h.missed = missed
    s._join(0, pos, expected, seen_last, True, None)
    t._handles.add(s)
    return s


def segment_creator_pid(name):
    """The creator pid recorded in a topic segment's validated header (for cleanup)."""
    seg_name = _segment.normalize_name(name)
    mapping, size = _segment.open_existing(seg_name)
    if mapping is None:
        raise CorruptSegment(f"{seg_name!r} is empty")
    cdef Py_buffer view
    try:
        PyObject_GetBuffer(mapping, &view, PyBUF_SIMPLE)
        try:
            pid = c.tp_creator_pid(view.buf, <uint64_t>view.len)
        finally:
            PyBuffer_Release(&view)
    finally:
        mapping.close()
    if pid == 0:
        raise CorruptSegment(f"{seg_name!r} is not a ringipc topic")
    return pid


_DEBUG_NAMES = ("head", "tail", "last", "next_seq", "pub_owner", "free_until", "data_waiters",
                "space_waiters", "lock_waiters", "slot_hint", "slots_offset", "meta_offset", "data_offset")


def _debug_state(Topic topic):
    """The header's shared words and the section offsets, for tests."""
    cdef uint64_t out[c.TP_DEBUG_WORDS]
    topic._check_open()
    c.tp_debug_state(&topic._h, out)
    state = {name: out[i] for i, name in enumerate(_DEBUG_NAMES)}
    state["ncells"] = topic._h.ncells
    state["pub_owner_pid"] = state["pub_owner"] & 0xFFFFFFFF
    return state
