# Part of ringipc/core/_ring.pyx (included there, compiled as one module):
# zero-copy access to one message in a ring -- the buffer *is* shared memory.
#
# A view holds its record claimed (and its handle's lock flag set) until it is
# released; consumers of large messages use it to avoid one of the two copies,
# producers to build a message in place (e.g. numpy.frombuffer / readinto).
# Ring.recv_view() and Ring.send_view() make them.


cdef class _View:
    cdef Ring _ring
    cdef c.rip_desc _d
    cdef bint _active
    cdef int _exports
    cdef bint _writable

    def __getbuffer__(self, Py_buffer *buffer, int flags):
        if not self._active:
            raise ValueError("this ring view was released")
        PyBuffer_FillInfo(buffer, self, self._d.data, <Py_ssize_t>self._d.length, not self._writable, flags)
        self._exports += 1

    def __releasebuffer__(self, Py_buffer *buffer):
        self._exports -= 1

    def __len__(self):
        return self._d.length

    @property
    def active(self):
        return self._active

    cdef _opened(self, Ring ring):
        """Called with the handle lock held by the claim; the view now owns it."""
        self._ring = ring
        self._active = True
        ring._view_open = True
        ring._unlock_handle()

    cdef int _begin_finish(self) except -1:
        """Returns 1 if already finished; else takes the handle lock back."""
        if not self._active:
            return 1
        if self._exports:
            # The memory is about to be reused by other processes.
            raise BufferError("release every memoryview of this ring view first")
        self._ring._lock_for_view()
        self._active = False
        self._ring._view_open = False
        return 0

    def __enter__(self):
        return self


cdef class ReadView(_View):
    """A claimed message, readable in place."""

    @staticmethod
    def _claim(Ring ring, bint block, timeout):
        cdef ReadView view = ReadView.__new__(ReadView)
        ring._read_begin(&view._d, block, timeout)  # leaves the handle lock held
        view._opened(ring)
        return view

    def release(self):
        """Finish reading: the record's space returns to the writers."""
        if not self._begin_finish():
            self._ring._read_end(&self._d)

    def __dealloc__(self):
        if self._active and self._ring is not None:
            self._ring._view_open = False
            self._ring._read_end_unlocked(&self._d)

    def tobytes(self):
        return bytes(memoryview(self))

    def __exit__(self, *exc):
        self.release()


cdef class WriteView(_View):
    """Claimed space for one message, writable in place."""

    @staticmethod
    def _claim(Ring ring, length, bint block, timeout):
        cdef WriteView view = WriteView.__new__(WriteView)
        if length < 0:
            raise ValueError("length must be >= 0")
        ring._write_begin(<uint64_t>length, &view._d, block, timeout)  # leaves the handle lock held
        view._writable = True
        view._opened(ring)
        return view

    def commit(self):
        """Publish the message to readers."""
        if not self._begin_finish():
            self._ring._write_end(&self._d, True)

    def abort(self):
        """Give the space up without publishing anything."""
        if not self._begin_finish():
            self._ring._write_end(&self._d, False)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def __dealloc__(self):
        # A view dropped unfinished must not leave a live claim that nobody
        # will ever finish: recovery only releases claims of dead processes.
        if self._active and self._ring is not None:
            self._ring._view_open = False
            self._ring._write_end_unlocked(&self._d, False)
