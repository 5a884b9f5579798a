# Included by _topic.pyx: Subscriber, the read side (csrc/topic_subscribe.c,
# csrc/topic_read.c): copies, poll, and zero-copy views (_topic_view.pxi).

cdef class Subscriber(_Handle):
    """Receives every message of a topic from where it joined: ``recv_bytes``,
    ``recv_bytes_into``, ``recv_view``, ``recv``, ``poll``.

    ``missed`` counts the messages this subscriber skipped because publishers
    overwrote them first (drop-oldest), or newer values replaced them
    (latest); it stays 0 on a lossless topic.  ``seq`` is the sequence number
    (publish order, from 0) of the last message received."""
    cdef object _watch  # ringipc.mp.readiness.Watch, made by the first fileno()

    def fileno(self):
        """A descriptor readable exactly while this subscriber has a message
        to read (for selectors, ``multiprocessing.connection.wait()``,
        ``ringipc.wait()``).  It is this handle's doorbell, lit and put out
        by this object's receives: nothing is paid per message before the
        first call, and publishers pay one datagram per message that arrives
        while the subscriber has read everything."""
        self._check_open()
        watch = self._watch
        if watch is None or not watch.active:
            from ..mp.readiness import Watch
            watch = self._watch = Watch(self)
        return watch.fileno()

    cdef int _consumed(self) except -1:
        # A receive that empties this subscriber puts its descriptor out.
        if self._watch is not None:
            self._watch.consumed()
        return 0

    def close(self):
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()
        _Handle.close(self)

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
                if st == c.TP_EMPTY and self._watch is not None:
                    # Lit by a ring still in flight for a message already
                    # read: put out, or a selector would spin on it.
                    self._watch.refresh()
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
                self._consumed()
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
                            self._consumed()
                            raise BufferTooShort(out)
                        continue
                    _copy(<char *>buf.buf + off, src, n)
                    st = c.tp_read_end(&self._h)
                finally:
                    self._busy = False
                if st == c.TP_OK:
                    self._consumed()
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
