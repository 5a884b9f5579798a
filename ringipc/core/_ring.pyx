# cython: language_level=3
"""The shared-memory ring as a Python object (message mode).

One module in several files: this one holds the Ring handle and its
lifetime and its claims; the files it includes hold the rest --
_ring_support.pxi (helpers, module functions), _ring_waits.pxi (waiting and
when to recover), _ring_messages.pxi and _ring_batch.pxi (bodies of the
message and batch calls), _ring_views.pxi (zero-copy views), _ring_bells.pxi
(doorbells) and _ring_testhooks.pxi (test hooks).  The C ring is linked
into this module only: its globals (the fork generation) exist once per process.

The GIL is released only around the C wait and around copies of at least
NOGIL_COPY_THRESHOLD bytes: for small messages, dropping and retaking the GIL
would cost more than the copy.  Waits run in slices of WAIT_SLICE seconds so
that signal handlers (Ctrl-C) run promptly, against a CLOCK_MONOTONIC deadline.
"""
import os
import queue
from multiprocessing.reduction import ForkingPickler

cimport cython

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_FillInfo, PyObject_GetBuffer, PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport int32_t, uint32_t, uint64_t
from libc.string cimport memcpy
from posix.unistd cimport getpid

cdef extern from "<sched.h>" nogil:
    int sched_yield()
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

cimport ringipc.core._cring as c

from ._segment_handle import SegmentHandle, open_ref
from ..errors import BufferTooShort, ChannelClosed, CorruptSegment, MessageTooLarge, RingError

NOGIL_COPY_THRESHOLD = 64 * 1024
WAIT_SLICE = 0.05          # seconds between signal checks while blocked
RECOVERY_AFTER = 0.2       # seconds without progress before looking for dead peers' claims
RECOVERY_EVERY = 0.1       # seconds between a stalled handle's recovery attempts
DEFAULT_SPIN = 4000        # busy-poll iterations (~10-40 us) before sleeping
MAX_SLOTS = c.RIP_MAX_SLOTS
ABI_VERSION = c.RIP_ABI_VERSION
WAIT_BACKEND = c.rip_wait_backend_name().decode()
CHAOS_BUILD = bool(c.rip_chaos_build())  # RINGIPC_CHAOS=1: random pauses inside the protocol

cdef uint64_t _NOGIL_COPY = NOGIL_COPY_THRESHOLD
# Messages per batch claim (csrc/ring.h); a literal because C arrays are sized by it.
cdef enum:
    _BATCH = 64
assert _BATCH == c.RIP_BATCH_MAX
_KINDS = {"spsc": c.RIP_KIND_SPSC, "mpmc": c.RIP_KIND_MPMC}


include "_ring_support.pxi"
include "_ring_waits.pxi"


# No tp_clear: a Ring caught in a garbage cycle must keep its mapping until
# __dealloc__ has released its roles in the segment.
@cython.no_gc_clear
cdef class Ring:
    """A lock-free ring of whole messages in POSIX shared memory.

    ``Ring(capacity, kind="mpmc")`` creates a new segment in anonymous memory:
    it has no name, is passed to child processes as a descriptor (fork, spawn,
    forkserver, or inside objects sent through pools and queues) and is freed
    by the kernel when the last process using it exits, however it exits.
    ``Ring(..., name="x")`` creates a named segment that unrelated processes
    join with ``Ring.attach("x")``; its creator removes the name on
    ``close()``, by the context manager or at exit, and if the creator is
    killed, the last process to let go of it does.
    """
    def __cinit__(self):
        self._stalled_since = -1.0
        self._recovered_at = -1.0
        # Spinning only helps when the peer can run meanwhile on another core;
        # on a single CPU it burns the time slice the peer needs.
        self.spin = DEFAULT_SPIN if _cpus_available() > 1 else 0

    def __init__(self, capacity=1 << 20, kind="mpmc", name=None):
        if kind not in _KINDS:
            raise ValueError(f"kind must be 'spsc' or 'mpmc', not {kind!r}")
        if not isinstance(capacity, int) or capacity <= 0:
            raise ValueError(f"capacity must be a positive int, not {capacity!r}")
        cdef uint64_t ncells = c.rip_cells_for_capacity(capacity)
        if ncells == 0:
            raise ValueError(f"capacity {capacity} is larger than a ring can be")
        size = c.rip_segment_size(ncells)
        handle = SegmentHandle.create(size, name)
        try:
            self._map(handle)
            if c.rip_format(self._view.buf, size, ncells, _KINDS[kind], os.getpid()) != c.RIP_OK:
                raise ValueError(f"cannot format a ring of capacity {capacity}")
            self._attach_view()
        except BaseException:
            self._unmap()
            handle.release()
            raise
        self._creator_pid = os.getpid()

    @classmethod
    def attach(cls, name):
        """Join the existing named ring `name`; validates the whole header first."""
        return cls._from_handle(SegmentHandle.open(name))

    @classmethod
    def _from_handle(cls, handle):
        cdef Ring self = cls.__new__(cls)
        if handle.mapping is None:
            handle.release(reap=False)
            raise CorruptSegment(f"ring {handle.name!r}: segment is empty (its creator died while creating it?)")
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
        if c.rip_attach(&self._r, self._view.buf, <uint64_t>self._view.len, &why) != c.RIP_OK:
            reason = why.decode() if why != NULL else "invalid header"
            raise CorruptSegment(f"ring {self.name!r}: {reason}")
        self.kind = "mpmc" if self._r.multi else "spsc"

    cdef _unmap(self):
        if self._has_view:
            PyBuffer_Release(&self._view)
            self._has_view = False
        if self._mapping is not None:
            self._mapping.close()
            self._mapping = None
            self._segment_handle.mapping = None

    def __dealloc__(self):
        # May run during interpreter teardown, when module globals are None:
        # use C calls only, and leave the unlink to _segment's atexit hook then.
        if self._has_view:
            c.rip_release_roles(&self._r)
            PyBuffer_Release(&self._view)
            self._has_view = False
        if self._segment_handle is not None and SegmentHandle is not None:
            try:
                self._segment_handle.release()
            except OSError:
                pass

    def __reduce__(self):
        # Plain pickle: by name, or (anonymous) only into a child being started.
        self._check_open()
        return (_ring_from_ref, (self._segment_handle.plain_reduce_args(f"ring {self.name!r}"),))

    def _descriptor(self):
        """The descriptor of this ring's segment, to pass over a UNIX socket
        (SCM_RIGHTS); the receiver maps it with ring_from_descriptor()."""
        self._check_open()
        return self._segment_handle.fd

    def _another_handle(self):
        """A second, independent handle of this ring in this process (its
        own roles, slots and doorbells), whether the ring is named or not."""
        self._check_open()
        return Ring._from_handle(self._segment_handle.duplicate())

    def _reduce_for_multiprocessing(self):
        self._check_open()
        return (_ring_from_ref, (self._segment_handle.reduce_args(f"ring {self.name!r}"),))

    # -- properties -------------------------------------------------------
    @property
    def capacity(self):
        """Bytes in the data area (a power of two, at least the capacity asked for)."""
        self._check_open()
        return self._r.ncells * c.RIP_CELL

    @property
    def max_message_size(self):
        """The largest message that always fits: half the capacity."""
        self._check_open()
        return self._r.max_message

    @property
    def closed(self):
        return not self._has_view or self._close_pending

    @property
    def creator(self):
        """True in the process that created (and will unlink) the segment."""
        return self._creator_pid == os.getpid()

    def used_bytes(self):
        """Bytes held by unread or being-read records (64-byte granules)."""
        self._check_open()
        return c.rip_used_bytes(&self._r)

    # -- internals --------------------------------------------------------
    cdef int _check_open(self) except -1:
        if not self._has_view or self._close_pending:
            raise ChannelClosed(f"ring {self.name!r} is closed")
        return 0

    cdef int _lock_handle(self) except -1:
        # Threads sharing one handle take turns: SPSC publishes head only at
        # commit, so two threads in one claim would overlap.  The flag is
        # guarded by the GIL, which is dropped inside a claim only around large
        # copies: a plain store is the whole uncontended cost.
        if self._busy:
            self._wait_not_busy()
        self._busy = True
        if self._view_open:
            # One claim per handle at a time: a second one would overlap the
            # first (SPSC) or hide it from recovery (MPMC).
            self._busy = False
            raise RingError(f"ring {self.name!r}: release the open view before using this handle again")
        return 0

    cdef void _unlock_handle(self) noexcept:
        self._busy = False

    cdef int _wait_not_busy(self) except -1:
        # Another thread of this process is copying without the GIL.
        while self._busy:
            with nogil:
                sched_yield()
        return 0

    cdef int _lock_for_view(self) except -1:
        """Like _lock_handle, for the view that holds this handle's claim."""
        if self._busy:
            self._wait_not_busy()
        self._busy = True
        return 0

    cdef void _write_end(self, c.rip_desc *d, bint commit) noexcept:
        self._write_end_unlocked(d, commit)
        self._busy = False

    cdef void _write_end_unlocked(self, c.rip_desc *d, bint commit) noexcept:
        if not self._has_view:
            return
        if commit:
            c.rip_write_commit(&self._r, d, 1)
        else:
            c.rip_write_abort(&self._r, d)

    cdef void _read_end_unlocked(self, c.rip_desc *d) noexcept:
        if self._has_view:
            c.rip_read_end(&self._r, d, 1)

    cdef int _note_stall(self, double now) except -1:
        return _ring_note_stall(self, now)  # _ring_waits.pxi

    cdef void _flush_notifies(self) noexcept:
        # A batch commits without notifying until it ends: a batch that waits
        # for space part-way says so first, or the reader it waits for might
        # itself be asleep.  Only what is owed: an unconditional wake of the
        # other side before every sleep makes two sides of sleepers wake each
        # other for ever.  (Batched reads never wait part-way.)
        if self._unwoken_readers:
            self._unwoken_readers = False
            c.rip_notify_readers(&self._r)

    cdef int _wait(self, bint writer, uint64_t length, double deadline) except -1:
        return _ring_wait(self, writer, length, deadline)  # _ring_waits.pxi

    cdef int _stalled(self, c.rip_status st, bint writer, uint64_t length, bint block,
                      double *deadline, object timeout) except -1:
        return _ring_stalled(self, st, writer, length, block, deadline, timeout)  # _ring_waits.pxi

    cdef int _write_begin(self, uint64_t length, c.rip_desc *d, bint block, object timeout) except -1:
        """Claims room for `length` bytes; on return the handle lock is held."""
        cdef c.rip_status st
        cdef double deadline = -2.0
        self._check_open()
        while True:
            self._lock_handle()
            st = c.rip_write_begin(&self._r, length, d)
            if st == c.RIP_OK:
                self._stalled_since = -1.0
                return 0
            self._busy = False
            self._stalled(st, True, length, block, &deadline, timeout)

    cdef int _write(self, const char *src, uint64_t length, bint block, object timeout) except -1:
        cdef c.rip_desc d
        self._write_begin(length, &d, block, timeout)
        try:
            _copy(d.data, src, length)
        finally:
            c.rip_write_commit(&self._r, &d, 1)
            self._busy = False
        return 0

    cdef int _read_begin(self, c.rip_desc *d, bint block, object timeout) except -1:
        """Claims the next message; on return the handle lock is held."""
        cdef c.rip_status st
        cdef double deadline = -2.0
        self._check_open()
        while True:
            self._lock_handle()
            st = c.rip_read_begin(&self._r, d)
            if st == c.RIP_OK:
                self._stalled_since = -1.0
                return 0
            self._busy = False
            self._stalled(st, False, 0, block, &deadline, timeout)

    cdef void _read_end(self, c.rip_desc *d) noexcept:
        c.rip_read_end(&self._r, d, 1)
        self._busy = False

    cdef object _read_bytes(self, c.rip_desc *d):
        try:
            out = PyBytes_FromStringAndSize(NULL, d.length)
            _copy(PyBytes_AS_STRING(out), d.data, d.length)
        finally:
            self._read_end(d)
        return out

    # -- message mode -----------------------------------------------------
    def send_bytes(self, data, bint block=True, timeout=None):
        """Append one message (any bytes-like object, zero length allowed).

        Blocks while the ring is full; raises queue.Full if `block` is false
        or `timeout` (seconds) passes first."""
        return _send_bytes(self, data, block, timeout)

    def send_bytes_many(self, messages, bint block=True, timeout=None):
        """Append each message in order, waking readers once; returns the count.

        Small messages go in with one claim per run of up to 64 (one
        synchronisation with the other processes per batch, not per message).
        `timeout` applies to each message's wait for space.  If the ring fills
        (block=False, or the timeout passes), queue.Full is raised with
        ``exc.sent`` set to the number of messages already appended."""
        return _send_bytes_many(self, messages, block, timeout)

    def recv_bytes(self, bint block=True, timeout=None):
        """Remove and return the next whole message as bytes.

        Blocks while the ring is empty; raises queue.Empty if `block` is false
        or `timeout` passes first, EOFError once the writing side shut down
        and everything was read."""
        return _recv_bytes(self, block, timeout)

    def recv_bytes_many(self, Py_ssize_t max_messages, bint block=True, timeout=None):
        """Wait for one message like recv_bytes, then take up to `max_messages`
        that are already there; hands their space back and wakes writers
        once (per message only for messages of 64 KiB and more)."""
        return _recv_bytes_many(self, max_messages, block, timeout)

    def recv_bytes_into(self, buffer, bint block=True, timeout=None):
        """Copy the next message into a writable buffer; returns its length.

        If the buffer is too small the message is still consumed and raised
        inside BufferTooShort (args[0]), as multiprocessing does."""
        return _recv_bytes_into(self, buffer, block, timeout)

    def recv_view(self, bint block=True, timeout=None):
        """Zero-copy receive: a read-only buffer over the next message in
        shared memory.  Use it as a context manager (or call ``release()``);
        until then the message stays claimed and this handle refuses other
        calls.  Copy out anything needed after release."""
        return ReadView._claim(self, block, timeout)

    def send_view(self, length, bint block=True, timeout=None):
        """Zero-copy send: a writable buffer of `length` bytes in shared memory.
        Leaving the ``with`` block (or ``commit()``) publishes it; an exception
        (or ``abort()``) discards it without publishing anything."""
        return WriteView._claim(self, length, block, timeout)

    def poll(self, timeout=0.0):
        """True if a message (or the end of the stream) can be read without
        blocking, waiting up to `timeout` seconds (None: forever)."""
        return _poll(self, timeout)

    def shutdown(self, how):
        """Close one direction for every process: "write" makes readers see
        EOFError once drained; "read" makes writers get BrokenPipeError."""
        return _shutdown(self, how)

    def recover(self):
        """Release claims left by dead processes now; returns how many (MPMC)."""
        return _recover(self)

    # -- doorbells: bodies and docs in _ring_bells.pxi; ringipc.core.doorbell uses them
    def _bell_install(self, bint writer, name):
        return _bell_install(self, writer, name)
    def _bell_arm(self, bint writer, length=0):
        return _bell_arm(self, writer, length)
    def _bell_disarm(self, bint writer):
        _bell_disarm(self, writer)
    def _notify_writers(self):
        _notify_writers(self)

    # -- lifetime ---------------------------------------------------------
    cdef _finish_close(self):
        c.rip_release_roles(&self._r)
        self._unmap()

    def close(self):
        """Detach this handle; the creating process also unlinks the name.

        Threads of this process blocked on the handle get ChannelClosed; the
        mapping goes away when the last of them has left its wait."""
        if self._has_view and not self._close_pending:
            self._lock_handle()
            try:
                if self._waiting:
                    self._close_pending = True
                    c.rip_notify_readers(&self._r)  # wake them now, not at the end of a slice
                    c.rip_notify_writers(&self._r)
                else:
                    self._finish_close()
            finally:
                self._busy = False
        if self._segment_handle is not None:
            self._segment_handle.release()

    def unlink(self):
        """Remove the segment's name now (attached handles keep working);
        nothing to do for an anonymous ring."""
        self._segment_handle.unlink()

    def __enter__(self):
        self._check_open()
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if not self._has_view else f"capacity={self._r.ncells * c.RIP_CELL}"
        return f"<ringipc.Ring {self.name!r} kind={self.kind} {state}>"


    # -- test hooks (_ring_testhooks.pxi): states only a crash produces --
    def _debug_segment_path(self):
        """A path that opens this ring's segment here (named or anonymous)."""
        return self._segment_handle.path

    def _debug_layout(self):
        return _hook_layout(self)

    def _debug_claim_and_hold(self, length):
        return _hook_claim_and_hold(self, length)

    def _debug_read_and_hold(self):
        return _hook_read_and_hold(self)

    def _debug_sleepers(self):
        return _hook_sleepers(self)

    def _debug_owners(self):
        return _hook_owners(self)

    def _debug_set_owner(self, where, pid, start):
        _hook_set_owner(self, where, pid, start)

    def _debug_pretend_recovering(self, bint running):
        """Count (or stop counting) a recovery as running on another thread
        of this process, so that this process's own word in the recovery
        lock reads as held, not stale."""
        c.rip_debug_count_recovery(1 if running else -1)


def _ring_from_ref(ref):
    return Ring._from_handle(open_ref(ref))


def ring_from_descriptor(fd, label):
    """A Ring on the segment descriptor `fd` (received from another process,
    now ours: closed with the ring); `label` names it in messages."""
    return Ring._from_handle(SegmentHandle.from_fd(fd, label))


# multiprocessing's picklers (and ringipc's, which shares their reducers) may
# hand an anonymous ring's descriptor to another process; plain pickle may not.
ForkingPickler.register(Ring, Ring._reduce_for_multiprocessing)


include "_ring_messages.pxi"
include "_ring_batch.pxi"
include "_ring_views.pxi"
include "_ring_bells.pxi"
include "_ring_testhooks.pxi"
