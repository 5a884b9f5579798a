# The Ring type's C-level members (its method bodies live in _ring.pyx and the
# _ring_*.pxi files it includes).
from libc.stdint cimport uint32_t, uint64_t

cimport ringipc.core._cring as c


cdef class Ring:
    cdef c.rip_ring _r
    cdef object _mapping
    cdef object _segment_handle  # _segment_handle.SegmentHandle: the descriptor, the name if any
    cdef Py_buffer _view
    cdef bint _has_view
    cdef readonly str name
    cdef readonly str kind
    cdef int _creator_pid
    cdef public uint32_t spin
    cdef bint _busy          # a claim of this handle is in progress (guarded by the GIL)
    cdef bint _view_open
    cdef int _waiting            # threads of this process inside _wait (GIL-guarded)
    cdef bint _close_pending     # close() came while threads waited: the last one unmaps
    cdef double _stalled_since   # monotonic time this handle first found no progress, or -1
    cdef double _recovered_at    # monotonic time of this handle's last recovery attempt
    cdef bint _unwoken_readers   # a batch's commits that readers were not yet told of

    cdef _map(self, object handle)
    cdef _attach_view(self)
    cdef _unmap(self)
    cdef _finish_close(self)
    cdef int _check_open(self) except -1
    cdef int _lock_handle(self) except -1
    cdef void _unlock_handle(self) noexcept
    cdef int _wait_not_busy(self) except -1
    cdef int _lock_for_view(self) except -1
    cdef void _write_end(self, c.rip_desc *d, bint commit) noexcept
    cdef void _write_end_unlocked(self, c.rip_desc *d, bint commit) noexcept
    cdef void _read_end_unlocked(self, c.rip_desc *d) noexcept
    cdef int _wait(self, bint writer, uint64_t length, double deadline) except -1
    cdef int _note_stall(self, double now) except -1
    cdef void _flush_notifies(self) noexcept
    cdef int _stalled(self, c.rip_status st, bint writer, uint64_t length, bint block,
                      double *deadline, object timeout) except -1
    cdef int _write_begin(self, uint64_t length, c.rip_desc *d, bint block, object timeout) except -1
    cdef int _write(self, const char *src, uint64_t length, bint block, object timeout) except -1
    cdef int _read_begin(self, c.rip_desc *d, bint block, object timeout) except -1
    cdef void _read_end(self, c.rip_desc *d) noexcept
    cdef object _read_bytes(self, c.rip_desc *d)
