# cython: language_level=3
"""The per-message fast path of ``mq://`` channels, in C.

A small POSIX message-queue message costs well under a microsecond of
system call, so the Python layer around it (argument checks, attribute
loads, posix_ipc's own argument parsing) was a visible share of it.
:class:`MqFastPath` is the C base class of ``MqChannel`` (transports/mq.py):
its ``send_bytes``/``recv_bytes`` make the everyday call (a whole ``bytes``
object out; one data message in, with no ``maxlength`` and no timeout) with
one ``mq_send``/``mq_receive`` on the channel's descriptors, and hand
everything else to the Python general path: a full or empty queue (which
must wait), control messages, errors, other arguments.

The descriptors are non-blocking (the Python side waits in ``poll``), so
these calls never sleep and no signal can interrupt them; ``_fast_setup``
refuses descriptors that are not.  A failed call has sent or taken nothing,
so handing over to the general path after it is always safe.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.errno cimport errno

from ..channel import BaseChannel


cdef extern from "<fcntl.h>" nogil:
    int O_NONBLOCK

cdef extern from "<mqueue.h>" nogil:
    ctypedef int mqd_t
    cdef struct mq_attr:
        long mq_flags
        long mq_msgsize
    int mq_getattr(mqd_t mqdes, mq_attr *attr)
    int mq_send(mqd_t mqdes, const char *msg_ptr, size_t msg_len, unsigned int msg_prio)
    ssize_t mq_receive(mqd_t mqdes, char *msg_ptr, size_t msg_len, unsigned int *msg_prio)

# Above this many bytes a copy runs with the GIL released.
cdef Py_ssize_t HOLD_GIL_BELOW = 64 * 1024


cdef class MqFastPath:
    # -1 while the matching fast path is off (before setup, and from close on).
    cdef int _fast_rfd
    cdef int _fast_sfd
    cdef Py_ssize_t _fast_send_max
    # Received messages up to this length are data this channel accepts;
    # anything longer (control messages, over-limit data) goes to Python.
    cdef Py_ssize_t _fast_accept_max
    cdef bint _fast_receiving
    cdef char *_buffer
    cdef Py_ssize_t _buffer_size

    def __cinit__(self, *args, **kwargs):
        self._fast_rfd = -1
        self._fast_sfd = -1
        self._fast_send_max = -1
        self._fast_accept_max = -1
        self._fast_receiving = False
        self._buffer = NULL
        self._buffer_size = 0

    def __dealloc__(self):
        PyMem_Free(self._buffer)

    def _fast_setup(self, int rfd, int sfd, Py_ssize_t send_max):
        """Turn the fast paths on for non-blocking queue descriptors; a
        descriptor that is not non-blocking keeps its calls on the general path."""
        cdef mq_attr attr
        if mq_getattr(rfd, &attr) == 0 and attr.mq_flags & O_NONBLOCK and attr.mq_msgsize > 0:
            self._buffer = <char *>PyMem_Malloc(<size_t>attr.mq_msgsize)
            if self._buffer == NULL:
                raise MemoryError()
            self._buffer_size = attr.mq_msgsize
            self._fast_rfd = rfd
        if mq_getattr(sfd, &attr) == 0 and attr.mq_flags & O_NONBLOCK:
            self._fast_sfd = sfd
            self._fast_send_max = send_max

    def _fast_accept(self, bint receiving, Py_ssize_t accept_max):
        """Whether receives may take the fast path (nothing but data expected),
        and the longest message to accept as data."""
        self._fast_receiving = receiving
        self._fast_accept_max = accept_max

    def _fast_off(self):
        """Called by close() before the queues go: no call may use the descriptors after."""
        self._fast_rfd = self._fast_sfd = -1
        self._fast_receiving = False

    def send_bytes(self, buf, offset=0, size=None):
        cdef Py_ssize_t length
        cdef const char *data
        cdef int done
        if type(buf) is bytes and size is None and self._fast_sfd >= 0 and offset == 0:
            length = PyBytes_GET_SIZE(buf)
            if length <= self._fast_send_max:
                data = PyBytes_AS_STRING(buf)
                if length < HOLD_GIL_BELOW:
                    done = mq_send(self._fast_sfd, data, <size_t>length, 0)
                else:
                    # buf is referenced by this frame, so its bytes outlive the call.
                    with nogil:
                        done = mq_send(self._fast_sfd, data, <size_t>length, 0)
                if done == 0:
                    return
                # Full, or an error: nothing was sent; the general path waits or raises.
        BaseChannel.send_bytes(self, buf, offset, size)

    def recv_bytes(self, maxlength=None, timeout=None):
        cdef ssize_t got
        if maxlength is None and timeout is None and self._fast_receiving and self._fast_rfd >= 0:
            if self._buffer_size < HOLD_GIL_BELOW:
                got = mq_receive(self._fast_rfd, self._buffer, <size_t>self._buffer_size, NULL)
            else:
                with nogil:
                    got = mq_receive(self._fast_rfd, self._buffer, <size_t>self._buffer_size, NULL)
            if got >= 0:
                message = PyBytes_FromStringAndSize(self._buffer, got)
                if got <= self._fast_accept_max:
                    return message
                return self._received_other(message, maxlength, timeout)
            # Empty, or an error: nothing was taken; the general path waits or raises.
        return BaseChannel.recv_bytes(self, maxlength, timeout)
