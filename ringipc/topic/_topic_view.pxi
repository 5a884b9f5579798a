# Included by _topic.pyx: TopicView, one message in place, checked seqlock
# style when released (docs/topic.md, "Views").

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
        if c.tp_read_end(&sub._h) == c.TP_OK:
            sub._consumed()
        else:
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
