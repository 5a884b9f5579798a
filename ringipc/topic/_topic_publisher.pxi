# Included by _topic.pyx: Publisher, the write side (csrc/topic_publish.c).

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

    def _another_handle(self):
        # A publisher's readiness is the topic's, not the handle's: a second
        # handle of this process watches it as well.
        return self._topic.publisher()

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
