# The shared page behind every primitive: creating, attaching, validating,
# unmapping and pickling it (included by _sync.pyx, which names the C API).

@cython.no_gc_clear
cdef class _Primitive:
    """The shared page and its validated header; pickles as its name."""
    cdef readonly str name
    cdef object _mapping
    cdef object _segment_handle
    cdef Py_buffer _view
    cdef bint _has_view
    cdef rip_sync *_s
    cdef int _creator_pid
    cdef object __weakref__

    def __cinit__(self):
        self._s = NULL

    cdef _create(self, uint32_t kind, uint32_t value, uint32_t max_value, name, uint32_t flags=0):
        size = rip_sync_segment_size()
        handle = SegmentHandle.create(size, name)
        try:
            self._map(handle)
            if rip_sync_format(self._view.buf, size, kind, value, max_value, flags, getpid()) != 0:
                raise ValueError(f"cannot set up {type(self).__name__} {handle.name!r}")
            self._attach_view(kind)
        except BaseException:
            self._unmap()
            handle.release()
            raise
        self._creator_pid = getpid()

    cdef _join_handle(self, uint32_t kind, handle):
        if handle.mapping is None:
            handle.release(reap=False)
            raise CorruptSegment(f"{handle.name!r}: segment is empty (its creator died while creating it?)")
        self._map(handle)
        try:
            self._attach_view(kind)
        except BaseException:
            self._unmap()
            handle.release(reap=False)
            raise

    cdef _map(self, object handle):
        self.name = handle.name
        self._segment_handle = handle
        self._mapping = handle.mapping
        PyObject_GetBuffer(self._mapping, &self._view, PyBUF_WRITABLE)
        self._has_view = True

    cdef _attach_view(self, uint32_t kind):
        cdef const char *why = NULL
        cdef rip_sync *s = NULL
        if rip_sync_attach(self._view.buf, <uint64_t>self._view.len, kind, &s, &why) != RIP_SYNC_OK:
            raise CorruptSegment(f"{self.name!r}: {why.decode() if why != NULL else 'invalid header'}")
        self._s = s

    cdef _unmap(self):
        self._s = NULL
        if self._has_view:
            PyBuffer_Release(&self._view)
            self._has_view = False
        if self._mapping is not None:
            self._mapping.close()
            self._mapping = None
            self._segment_handle.mapping = None

    cdef inline rip_sync *_open(self) except NULL:
        if self._s == NULL:
            raise ValueError(f"{type(self).__name__} {self.name!r} is closed")
        return self._s

    def close(self):
        """Unmap it here; the creator also removes its name (handles already
        open elsewhere keep working)."""
        self._unmap()
        if self._segment_handle is not None:
            self._segment_handle.release()

    def __dealloc__(self):
        if self._has_view:
            PyBuffer_Release(&self._view)
            self._has_view = False
        if self._segment_handle is not None and SegmentHandle is not None:
            try:
                self._segment_handle.release()
            except OSError:
                pass

    def __reduce__(self):
        # Plain pickle: by name, or (anonymous) only into a child being started.
        self._open()
        return (_primitive_from_ref, (type(self), self._segment_handle.plain_reduce_args(self._what())))

    def _reduce_for_multiprocessing(self):
        self._open()
        return (_primitive_from_ref, (type(self), self._segment_handle.reduce_args(self._what())))

    def _what(self):
        return f"{type(self).__name__} {self.name!r}"

    def _debug_segment_path(self):
        """A path that opens this primitive's segment here (named or anonymous)."""
        return self._segment_handle.path

    @property
    def closed(self):
        return self._s == NULL

    cdef int _sleep(self, double deadline, double *until) except -1:
        """The end of the next wait slice, or 1 once `deadline` has passed."""
        cdef double now = _now()
        PyErr_CheckSignals()
        if deadline >= 0 and now >= deadline:
            return 1
        until[0] = now + WAIT_SLICE
        if deadline >= 0 and deadline < until[0]:
            until[0] = deadline
        return 0
