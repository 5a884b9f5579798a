# cython: language_level=3
"""Connection's everyday calls in C: send_bytes/recv_bytes of whole bytes
messages and send/recv of small picklable objects.

In pure Python each of those calls was several Python-level steps (the
method, its checks, the clock, the bound ring method, the receive's
reference test), a few times the raw ring's own cost for a 64 B message.
Here one C call reaches the ring's claim/copy/commit directly (Ring's cdef
methods, through its vtable).  Anything unusual -- an offset or size, a
buffer that is not contiguous, a message too big for the ring or starting
like a side-segment reference (NUL, 0xff), a full ring, an empty ring for longer than PEER_CHECK, a maxlength --
goes to the Connection's Python method, which keeps every behaviour.

``attach(conn)`` puts the fast calls in the Connection's instance dict (so
``conn.send_bytes`` is the C method itself, no Python frame in between);
``detach(conn)`` takes them out again, after which the class's methods
(and their "handle is closed" checks) answer.  A FastPath holds only a weak
reference to its Connection, so a dropped Connection is still closed by
refcounting at once, which is how its peer learns it is gone.
"""
import queue
import weakref

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_CheckBuffer, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint64_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

cimport ringipc.core._cring as c
from ringipc.core._ring cimport Ring

from ringipc.core import large
from ringipc.mp import oob
from ringipc.mp.pickling import loads

cdef object _Empty = queue.Empty
cdef object _Full = queue.Full
cdef object _Frame = oob.Frame
cdef object _encode = oob.encode
cdef object _is_reference = large.is_reference
_FAST_NAMES = ("send_bytes", "recv_bytes", "send", "recv")
# Side-segment references (large.py) start with these two bytes: any other
# message, NUL-led binary data included, is sent and received as it is
# without asking large.py.  Checked here so a change of the layout fails loudly.
if not (large.MAGIC[:2] == large.SLAB_MAGIC[:2] == b"\x00\xff"):
    raise ImportError("ringipc.core.large's reference prefix changed: update _connection_fast.pyx")


cdef inline bint _maybe_reference(const char *p, Py_ssize_t n) noexcept:
    return n >= 2 and p[0] == 0 and <unsigned char>p[1] == 0xff


cdef inline double _now() noexcept nogil:
    # CLOCK_MONOTONIC is time.monotonic()'s clock on Linux, read via the vDSO.
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef class FastPath:
    """The C side of one Connection (see the module's doc)."""
    cdef Ring _tx
    cdef Ring _rx
    cdef object _conn            # weakref.ref to the Connection
    cdef object _cls             # its class: the Python methods for the unusual cases
    cdef uint64_t _limit
    cdef double _period          # PEER_CHECK
    cdef double _next_check      # monotonic time of the next liveness check on send
    cdef object _peer_check      # PEER_CHECK as a Python float (the ring's wait slice)

    def __init__(self, conn, double period):
        self._conn = weakref.ref(conn)
        self._cls = type(conn)
        self._tx = conn._tx
        self._rx = conn._rx
        self._limit = conn._limit
        self._period = period
        self._peer_check = period
        self._next_check = -1.0  # the first send checks, as the Python path's

    def detach(self):
        self._tx = self._rx = None

    cdef object _owner(self):
        conn = self._conn()
        if conn is None:
            raise OSError("handle is closed")
        return conn

    cdef inline int _due_check(self) except -1:
        cdef double now = _now()
        if now >= self._next_check:
            self._next_check = now + self._period
            self._owner()._check_peer()  # poll(2), BrokenPipeError if the peer is gone
        return 0

    cdef int _write(self, data, const char *src, uint64_t n) except -1:
        """Send `data` (its bytes at src, n of them: within the limit, not
        looking like a side-segment reference)."""
        self._due_check()
        try:
            self._tx._write(src, n, False, None)
        except _Full:
            self._owner()._send_message(data)  # waits for room, checking the peer between slices
        return 0

    cdef bint _try_buffer(self, buf) except -1:
        """Send a whole contiguous buffer that is not bytes (a bytearray, a
        memoryview ...); False if it needs the Python path."""
        cdef Py_buffer view
        if PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE) != 0:
            return False
        try:
            if not _maybe_reference(<const char *>view.buf, view.len) and <uint64_t>view.len <= self._limit:
                self._write(buf, <const char *>view.buf, <uint64_t>view.len)
                return True
            return False
        finally:
            PyBuffer_Release(&view)

    cdef object _read(self):
        """The next message, as the ring holds it (a reference stays a reference)."""
        cdef c.rip_desc d
        cdef Ring rx = self._rx
        try:
            # Waiting straight away (not trying non-blocking first) spares
            # raising queue.Empty on every receive that finds the ring empty.
            rx._read_begin(&d, True, self._peer_check)
        except _Empty:
            return self._owner()._recv_wait(None)
        return rx._read_bytes(&d)

    def send_bytes(self, buf, offset=0, size=None):
        """Send a bytes-like object (or the slice [offset:offset+size] of it) as one message."""
        cdef Py_ssize_t n
        if self._tx is not None and offset == 0 and size is None:
            if type(buf) is bytes:
                n = PyBytes_GET_SIZE(buf)
                if not _maybe_reference(PyBytes_AS_STRING(buf), n) and <uint64_t>n <= self._limit:
                    self._write(buf, PyBytes_AS_STRING(buf), <uint64_t>n)
                    return
            elif PyObject_CheckBuffer(buf):
                try:
                    if self._try_buffer(buf):
                        return
                except BufferError:
                    pass  # not contiguous: the Python path copies it
        self._cls.send_bytes(self._owner(), buf, offset, size)

    def recv_bytes(self, maxlength=None):
        """Receive one message as bytes; EOFError once the peer is closed and drained."""
        if self._rx is None or maxlength is not None:
            conn = self._owner()
            try:
                return self._cls.recv_bytes(conn, maxlength)
            finally:
                if not conn._readable:  # a too-long message ends reading, as multiprocessing
                    self._rx = None
        data = self._read()
        if _maybe_reference(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)) and _is_reference(data):
            return large.load_bytes(data)
        return data

    def send(self, obj):
        """Send a picklable object (its large buffers out of band: oob.py)."""
        if self._tx is None:
            return self._cls.send(self._owner(), obj)
        data = _encode(obj)
        # A pickle starts with PROTO (0x80), so it never looks like a reference.
        if type(data) is bytes and <uint64_t>PyBytes_GET_SIZE(data) <= self._limit and PyBytes_AS_STRING(data)[0]:
            self._write(data, PyBytes_AS_STRING(data), <uint64_t>PyBytes_GET_SIZE(data))
            return
        conn = self._owner()
        if type(data) is not _Frame:
            return conn._send(data)
        conn._check_peer()
        conn._send_message(large.export(conn._tx.name, data, conn))

    def recv(self):
        """Receive one pickled object."""
        if self._rx is None:
            return self._cls.recv(self._owner())
        data = self._read()
        if PyBytes_GET_SIZE(data) and not PyBytes_AS_STRING(data)[0]:
            if _is_reference(data):
                return large.load(data, oob.decode_payload)  # straight from the slab: one copy out
            if oob.is_frame(data):
                return oob.decode(data)
        return loads(data)


def attach(conn, double period):
    """Give `conn` (an open Connection) its C fast path; returns the FastPath."""
    fast = FastPath(conn, period)
    d = conn.__dict__
    if conn._writable:
        d["send_bytes"] = fast.send_bytes
        d["send"] = fast.send
    if conn._readable:
        d["recv_bytes"] = fast.recv_bytes
        d["recv"] = fast.recv
    return fast


def detach(conn):
    """Undo attach(): the class's methods answer from now on."""
    d = conn.__dict__
    fast = d.pop("_fast", None)
    if fast is not None:
        fast.detach()
    for name in _FAST_NAMES:
        d.pop(name, None)
