# Part of ringipc/core/_ring.pyx (included there, compiled as one module): the bodies of Ring's
# message calls.  Each public method in the class is one C call to its body
# here (inline: no Python-level step is added).


cdef inline object _send_bytes(Ring self, data, bint block, timeout):
    cdef Py_buffer buf
    PyObject_GetBuffer(data, &buf, PyBUF_SIMPLE)
    try:
        self._write(<const char *>buf.buf, <uint64_t>buf.len, block, timeout)
    finally:
        PyBuffer_Release(&buf)


cdef inline object _recv_bytes(Ring self, bint block, timeout):
    cdef c.rip_desc d
    self._read_begin(&d, block, timeout)
    return self._read_bytes(&d)


cdef inline object _recv_bytes_into(Ring self, buffer, bint block, timeout):
    cdef Py_buffer buf
    cdef c.rip_desc d
    try:
        PyObject_GetBuffer(buffer, &buf, PyBUF_WRITABLE)
    except BufferError as exc:
        raise TypeError(f"recv_bytes_into needs a writable contiguous buffer: {exc}") from None
    try:
        self._read_begin(&d, block, timeout)
        if d.length > <uint64_t>buf.len:
            raise BufferTooShort(self._read_bytes(&d))
        try:
            _copy(buf.buf, d.data, d.length)
        finally:
            self._read_end(&d)
        return d.length
    finally:
        PyBuffer_Release(&buf)


cdef inline object _poll(Ring self, timeout):
    cdef double deadline = _deadline(timeout)
    self._check_open()
    while True:
        if c.rip_readable(&self._r) or (c.rip_flags(&self._r) & c.RIP_FLAG_WRITER_CLOSED):
            self._stalled_since = -1.0
            return True
        if self._wait(False, 0, deadline):
            return False


cdef inline object _shutdown(Ring self, how):
    self._check_open()
    if how == "write":
        c.rip_close_side(&self._r, c.RIP_FLAG_WRITER_CLOSED)
    elif how == "read":
        c.rip_close_side(&self._r, c.RIP_FLAG_READER_CLOSED)
    else:
        raise ValueError("how must be 'write' or 'read'")


cdef inline object _recover(Ring self):
    cdef uint32_t recovered = 0
    self._check_open()
    c.rip_recover(&self._r, &recovered)
    return recovered
