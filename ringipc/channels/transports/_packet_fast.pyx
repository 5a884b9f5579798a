# cython: language_level=3
"""The per-message fast path of ``unixpacket://`` channels, in C.

A small seqpacket message costs about a microsecond and a half of system
calls; the Python layer around them (argument checks, attribute loads, a
method call) added a sixth again, all of it visible in throughput.
:class:`PacketFastPath` is the C base class of ``PacketChannel``
(transports/packet.py): its ``send_bytes``/``recv_bytes``/``recv_bytes_into``
take the everyday call (a whole ``bytes`` object out; one message in, with
no ``maxlength``, offset or timeout) without that layer, and hand every other call, and every
failure, to the Python general path, so behaviour is identical.

Wire format (packet.py): a 16-byte header (tag byte 1, 15 zero bytes), then
the payload, one packet per message.  Sends use ``sendmsg`` with the header
and the payload as two buffers, so the payload is never copied in user
space.

Blocking.  The socket is blocking.  A call first tries without waiting
(``MSG_DONTWAIT``) while holding the GIL, the common case; only when that
would block does it wait in the kernel with the GIL released.  Large
transfers skip the first try, so their copies never hold the GIL.  A signal
interrupts the wait with ``EINTR``: the handlers run and, unless one
raised, the call is retried (PEP 475).  An interrupted call has sent or
taken nothing: seqpacket transfers are all or nothing.

``unixgram://`` channels (transports/unixgram_channel.py) use the same path
with one difference, turned on by ``_fast_hand_over()``: their socket has a
receive timeout (``SO_RCVTIMEO``) so that a blocked receive wakes to look at
the peer's lifeline, and such a wake-up, or any failed receive, is handed to
the Python general path (which waits on both and reports end-of-file)
instead of being retried or raised here.
"""
from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport EAGAIN, EINTR, errno
from libc.string cimport memcmp, memset

from ..channel import BaseChannel
from ...errors import BufferTooShort


cdef extern from "<errno.h>" nogil:
    int EWOULDBLOCK

cdef extern from "<sys/uio.h>" nogil:
    cdef struct iovec:
        void *iov_base
        size_t iov_len

cdef extern from "<sys/socket.h>" nogil:
    cdef struct msghdr:
        iovec *msg_iov
        size_t msg_iovlen
    ssize_t sendmsg(int sockfd, const msghdr *msg, int flags)
    ssize_t recvmsg(int sockfd, msghdr *msg, int flags)
    int MSG_DONTWAIT
    int MSG_NOSIGNAL
    int MSG_TRUNC

# Must match HEADER in packet.py.
cdef enum:
    HEADER_SIZE = 16
    # _receive's "nothing received, let the general path take over".
    HAND_OVER = -3
cdef char DATA_HEADER[HEADER_SIZE]
memset(DATA_HEADER, 0, HEADER_SIZE)
DATA_HEADER[0] = 1
# Above this many bytes a transfer goes straight to the GIL-free call.
cdef Py_ssize_t HOLD_GIL_BELOW = 64 * 1024


cdef inline bint _would_block(int err) nogil:
    return err == EAGAIN or err == EWOULDBLOCK


cdef class PacketFastPath:
    # -1 while the fast path is off (before setup, and from close on).
    cdef int _fast_fd
    cdef Py_ssize_t _fast_send_max
    # The receive limit (payload bytes), or -1 while receives take the general path.
    cdef Py_ssize_t _fast_limit
    # At least HEADER_SIZE + limit + 1 bytes: only a packet over the limit
    # reaches the last one.
    cdef Py_buffer _scratch
    cdef bint _have_scratch
    cdef bint _last_recv_small
    # A receive that times out or fails goes to the Python general path (unixgram).
    cdef bint _hand_over

    def __cinit__(self, *args, **kwargs):
        self._fast_fd = -1
        self._fast_send_max = -1
        self._fast_limit = -1
        self._have_scratch = False
        self._last_recv_small = True
        self._hand_over = False

    def __dealloc__(self):
        if self._have_scratch:
            PyBuffer_Release(&self._scratch)

    def _fast_setup(self, int fd, Py_ssize_t send_max):
        """Turn the fast path on for socket ``fd``, sending up to ``send_max`` bytes."""
        self._fast_fd = fd
        self._fast_send_max = send_max

    def _fast_receive_into(self, scratch, Py_ssize_t limit):
        """Receive into ``scratch`` (writable, at least header + ``limit`` + 1
        bytes), refusing messages over ``limit`` bytes; -1 turns fast receives off.

        A receive may be writing into the current buffer with the GIL
        released (another thread assigning ``max_message_size``); that is
        safe because the Python side sizes the buffer for the largest limit
        at creation and only ever hands the same object back, which it keeps
        referenced, so releasing our view of it never unmaps it."""
        if self._have_scratch:
            PyBuffer_Release(&self._scratch)
            self._have_scratch = False
        self._fast_limit = -1
        if limit >= 0:
            PyObject_GetBuffer(scratch, &self._scratch, PyBUF_WRITABLE)
            self._have_scratch = True
            if self._scratch.len < HEADER_SIZE + limit + 1:
                raise ValueError("the scratch buffer is shorter than header + limit + 1")
            self._fast_limit = limit

    def _fast_hand_over(self):
        """From now on a receive that times out or fails returns to the general path."""
        self._hand_over = True

    def _fast_off(self):
        """Called by close() before the socket goes: no call may use the fd after."""
        self._fast_fd = -1
        self._fast_limit = -1

    def send_bytes(self, buf, offset=0, size=None):
        if (type(buf) is bytes and size is None and self._fast_fd >= 0
                and PyBytes_GET_SIZE(buf) <= self._fast_send_max and offset == 0):
            self._send_tagged(<bytes>buf)
            return
        BaseChannel.send_bytes(self, buf, offset, size)

    cdef int _send_tagged(self, bytes payload) except -1:
        cdef iovec iov[2]
        cdef msghdr msg
        cdef ssize_t sent = -1
        cdef int err = EAGAIN
        cdef int fd = self._fast_fd
        cdef Py_ssize_t length = PyBytes_GET_SIZE(payload)
        memset(&msg, 0, sizeof(msg))
        iov[0].iov_base = DATA_HEADER
        iov[0].iov_len = HEADER_SIZE
        iov[1].iov_base = PyBytes_AS_STRING(payload)
        iov[1].iov_len = <size_t>length
        msg.msg_iov = iov
        msg.msg_iovlen = 2
        if length < HOLD_GIL_BELOW:
            sent = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL)
            err = errno
        while sent < 0 and (_would_block(err) or err == EINTR):
            if err == EINTR and PyErr_CheckSignals() < 0:
                return -1
            # payload is referenced by this frame, so its bytes outlive the call.
            with nogil:
                sent = sendmsg(fd, &msg, MSG_NOSIGNAL)
                err = errno
        if sent < 0:
            self._send_failed(payload, err)  # sends it after all, or raises
        return 0

    def recv_bytes(self, maxlength=None, timeout=None):
        cdef Py_ssize_t limit = self._fast_limit
        cdef ssize_t got
        cdef char *data
        cdef iovec iov[1]
        cdef bint header_ok
        if maxlength is None and timeout is None and self._fast_fd >= 0 and limit >= 0:
            data = <char *>self._scratch.buf
            iov[0].iov_base = data
            iov[0].iov_len = <size_t>(HEADER_SIZE + limit + 1)
            got = self._receive(iov, 1)
            if got == HAND_OVER:
                return BaseChannel.recv_bytes(self, maxlength, timeout)
            header_ok = got >= HEADER_SIZE and memcmp(data, DATA_HEADER, HEADER_SIZE) == 0
            if header_ok and got - HEADER_SIZE <= limit:
                self._last_recv_small = got < HOLD_GIL_BELOW
                return PyBytes_FromStringAndSize(data + HEADER_SIZE, got - HEADER_SIZE)
            self._check(got, header_ok, limit)  # raises
            raise AssertionError("a refused packet was not reported")
        return BaseChannel.recv_bytes(self, maxlength, timeout)

    def recv_bytes_into(self, buf, offset=0, timeout=None):
        cdef Py_buffer view
        cdef Py_ssize_t limit = self._fast_limit
        if timeout is None and self._fast_fd >= 0 and limit >= 0 and offset == 0:
            try:
                PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
            except (TypeError, BufferError):
                pass  # not a writable buffer: the general path says so
            else:
                try:
                    got = self._receive_into(&view, limit)
                finally:
                    PyBuffer_Release(&view)
                if got is not None:
                    return got
        return BaseChannel.recv_bytes_into(self, buf, offset, timeout)

    cdef object _receive_into(self, Py_buffer *view, Py_ssize_t limit):
        """_recv_message_into's work in C: the header, then the caller's
        buffer, then (when that is shorter than limit + 1) the scratch buffer.
        None: handed over (nothing received)."""
        cdef char header[HEADER_SIZE]
        cdef char *spill = <char *>self._scratch.buf
        cdef Py_ssize_t cap = limit + 1
        cdef iovec iov[3]
        cdef int parts = 2
        cdef ssize_t got
        cdef Py_ssize_t length
        cdef bint header_ok
        iov[0].iov_base = header
        iov[0].iov_len = HEADER_SIZE
        iov[1].iov_base = view.buf
        iov[1].iov_len = <size_t>(view.len if view.len < cap else cap)
        if view.len < cap:
            iov[2].iov_base = spill
            iov[2].iov_len = <size_t>(cap - view.len)
            parts = 3
        got = self._receive(iov, parts)
        if got == HAND_OVER:
            return None
        header_ok = got >= HEADER_SIZE and memcmp(header, DATA_HEADER, HEADER_SIZE) == 0
        if not (header_ok and got - HEADER_SIZE <= limit):
            self._check(got, header_ok, limit)  # raises
            raise AssertionError("a refused packet was not reported")
        length = got - HEADER_SIZE
        self._last_recv_small = got < HOLD_GIL_BELOW
        if length <= view.len:
            return length
        # As multiprocessing does: the whole message travels in the exception.
        whole = PyBytes_FromStringAndSize(<char *>view.buf, view.len) + PyBytes_FromStringAndSize(spill, length - view.len)
        raise BufferTooShort(whole)

    cdef ssize_t _receive(self, iovec *iov, int parts) except -2:
        """recvmsg one packet into ``iov`` (MSG_TRUNC: a longer one reports
        its real length); raises OSError, or returns HAND_OVER (see _fast_hand_over)."""
        cdef msghdr msg
        cdef ssize_t got = -1
        cdef int err = EAGAIN
        cdef int fd = self._fast_fd
        memset(&msg, 0, sizeof(msg))
        msg.msg_iov = iov
        msg.msg_iovlen = parts
        if self._last_recv_small:
            got = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC)
            err = errno
        while got < 0 and (_would_block(err) or err == EINTR):
            if err == EINTR and PyErr_CheckSignals() < 0:
                return -2
            with nogil:
                got = recvmsg(fd, &msg, MSG_TRUNC)
                err = errno
            if got < 0 and self._hand_over and _would_block(err):
                return HAND_OVER  # SO_RCVTIMEO expired: time to look at the lifeline
        if got < 0:
            if self._hand_over:
                return HAND_OVER
            raise OSError(err, _strerror(err))
        return got


cdef str _strerror(int err):
    import os

    return os.strerror(err)
