# Part of ringipc/core/_ring.pyx (included there, compiled as one module): the bodies of Ring's batch
# calls (send_bytes_many, recv_bytes_many): one claim, one wake-up per batch.


cdef int _write_batch(Ring self, c.rip_msg *msgs, int n, bint block, object timeout, Py_ssize_t *sent) except -1:
    """Appends msgs[0..n) in order, a claim per run of small messages;
    counts each one appended in *sent as it goes."""
    cdef int i = 0, small
    cdef size_t done
    cdef c.rip_status st
    cdef double deadline = -2.0
    while i < n:
        if msgs[i].length >= _NOGIL_COPY:
            # Copied without the GIL, and the reader is woken at once: a
            # large copy dwarfs a wake-up.
            self._write(<const char *>msgs[i].data, msgs[i].length, block, timeout)
            i += 1
            sent[0] += 1
            deadline = -2.0
            continue
        small = i + 1
        while small < n and msgs[small].length < _NOGIL_COPY:
            small += 1
        self._check_open()
        self._lock_handle()
        st = c.rip_write_many(&self._r, &msgs[i], small - i, &done)
        self._busy = False
        if st == c.RIP_OK:
            self._stalled_since = -1.0
            self._unwoken_readers = True
            i += <int>done
            sent[0] += <Py_ssize_t>done
            deadline = -2.0  # the timeout applies to each message's wait
            continue
        self._stalled(st, True, msgs[i].length, block, &deadline, timeout)
    return 0


cdef inline object _send_bytes_many(Ring self, messages, bint block, timeout):
    cdef Py_buffer bufs[_BATCH]
    cdef c.rip_msg msgs[_BATCH]
    cdef Py_ssize_t sent = 0
    cdef int held = 0, i
    it = iter(messages)
    failed = None
    try:
        while failed is None:
            held = 0
            try:
                try:
                    for data in it:
                        PyObject_GetBuffer(data, &bufs[held], PyBUF_SIMPLE)
                        msgs[held].data = bufs[held].buf
                        msgs[held].length = <uint64_t>bufs[held].len
                        held += 1
                        if held == _BATCH or msgs[held - 1].length >= _NOGIL_COPY:
                            break
                except BaseException as exc:
                    # A bad item (or a failing generator): what came before it
                    # still goes in, as if sent one by one, then it is raised.
                    failed = exc
                if held == 0:
                    break
                _write_batch(self, msgs, held, block, timeout, &sent)
            finally:
                for i in range(held):
                    PyBuffer_Release(&bufs[i])
        if failed is not None:
            raise failed
    except queue.Full as exc:
        exc.sent = sent  # how many of the batch went in before it filled
        raise
    finally:
        if self._has_view:
            self._unwoken_readers = False
            c.rip_notify_readers(&self._r)
    return sent


cdef inline object _recv_bytes_many(Ring self, Py_ssize_t max_messages, bint block, timeout):
    cdef c.rip_desc d
    cdef list out = []
    cdef bint claimed
    if max_messages < 1:
        raise ValueError("max_messages must be at least 1")
    self._read_begin(&d, block, timeout)  # the handle lock is ours until the end
    claimed = True
    try:
        while True:
            item = PyBytes_FromStringAndSize(NULL, d.length)
            _copy(PyBytes_AS_STRING(item), d.data, d.length)
            claimed = False
            c.rip_read_done(&self._r, &d)
            out.append(item)
            if d.length >= _NOGIL_COPY:
                c.rip_read_publish(&self._r)
                c.rip_notify_writers(&self._r)
            if len(out) >= max_messages or c.rip_read_begin(&self._r, &d) != c.RIP_OK:
                break
            claimed = True
    finally:
        if claimed:  # an exception with a message claimed: it is lost, as in recv_bytes
            c.rip_read_done(&self._r, &d)
        c.rip_read_publish(&self._r)
        self._busy = False
        c.rip_notify_writers(&self._r)
    return out
