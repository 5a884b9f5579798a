# cython: language_level=3
"""The per-message fast path of ``sysvmq://`` channels, in C.

A small System V message costs about a microsecond of system call; going
through ``sysv_ipc`` from a Python method (its argument parsing, a fresh
buffer per message, attribute loads) cost as much again.
:class:`SysvMqFastPath` is the C base class of ``SysvMqChannel``
(transports/sysvmq_channel.py): its ``send_bytes``/``recv_bytes`` make the
everyday call (a whole ``bytes`` data message out; one message in, with no
``maxlength`` and no timeout) with one ``msgsnd``/``msgrcv`` on the
channel's queue and message types, and hand everything else to the Python
general path: other arguments, control messages, and every error.

Blocking, as direct ``sysv_ipc`` use: a call first tries without waiting
(``IPC_NOWAIT``) holding the GIL, and only when the queue is full (empty)
waits in the kernel with the GIL released.  A signal interrupts the wait
with ``EINTR``: the handlers run and, unless one raised, the call is
retried (PEP 475).  A failed call has sent or taken nothing, so handing it
to the general path, which makes it again and reports what happened, is
always safe.  A channel has one receiver at a time: the receive buffer is
the channel's.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_CheckSignals
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.errno cimport EAGAIN, EINTR, ENOMSG, errno
from libc.string cimport memcpy

from ..channel import BaseChannel


cdef extern from "<sys/msg.h>" nogil:
    int IPC_NOWAIT
    int msgsnd(int msqid, const void *msgp, size_t msgsz, int msgflg)
    ssize_t msgrcv(int msqid, void *msgp, size_t msgsz, long msgtyp, int msgflg)

cdef enum:
    # Up to this many payload bytes a send builds its message on the stack.
    STACK_MESSAGE = 8192
    # The stack buffer in longs (aligned for the type field): room for one
    # long and STACK_MESSAGE bytes, as sizeof(long) >= 4.
    STACK_LONGS = 1 + STACK_MESSAGE // 4


cdef class SysvMqFastPath:
    # -1 while the fast path is off (before setup, and from close on).
    cdef int _fast_id
    cdef long _fast_send_type
    cdef long _fast_recv_type
    # The queue's message size S: data messages are 1 .. S - 1 bytes.
    cdef Py_ssize_t _fast_size
    # Received data up to this length is returned; -1: receives take the general path.
    cdef Py_ssize_t _fast_accept_max
    # struct msgbuf for receives: the type, then S bytes.
    cdef char *_rbuf

    def __cinit__(self, *args, **kwargs):
        self._fast_id = -1
        self._fast_accept_max = -1
        self._rbuf = NULL

    def __dealloc__(self):
        PyMem_Free(self._rbuf)

    def _fast_setup(self, int msqid, long send_type, long recv_type, Py_ssize_t size):
        """Turn the fast path on for queue ``msqid`` and the channel's types."""
        PyMem_Free(self._rbuf)
        self._rbuf = <char *>PyMem_Malloc(sizeof(long) + size)
        if self._rbuf == NULL:
            raise MemoryError()
        self._fast_send_type = send_type
        self._fast_recv_type = recv_type
        self._fast_size = size
        self._fast_id = msqid

    def _fast_accept(self, Py_ssize_t accept_max):
        """Return received data up to ``accept_max`` bytes; -1 turns fast receives off."""
        self._fast_accept_max = accept_max

    def _fast_off(self):
        """Called by close(): no call may use the queue after."""
        self._fast_id = -1
        self._fast_accept_max = -1

    def send_bytes(self, buf, offset=0, size=None):
        if (type(buf) is bytes and size is None and offset == 0 and self._fast_id >= 0
                and 0 < PyBytes_GET_SIZE(buf) < self._fast_size):
            if self._send(<bytes>buf) == 0:
                return
        BaseChannel.send_bytes(self, buf, offset, size)

    cdef int _send(self, bytes payload) except -1:
        """0 when sent; 1 when the general path must try (nothing was sent)."""
        cdef long stack[STACK_LONGS]
        cdef char *message = <char *>stack
        cdef Py_ssize_t length = PyBytes_GET_SIZE(payload)
        cdef int done, err
        cdef int msqid = self._fast_id
        if length > STACK_MESSAGE:
            message = <char *>PyMem_Malloc(sizeof(long) + length)
            if message == NULL:
                raise MemoryError()
        try:
            (<long *>message)[0] = self._fast_send_type
            memcpy(message + sizeof(long), PyBytes_AS_STRING(payload), length)
            done = msgsnd(msqid, message, <size_t>length, IPC_NOWAIT)
            err = errno
            while done < 0 and (err == EAGAIN or err == EINTR):
                if err == EINTR and PyErr_CheckSignals() < 0:
                    return -1
                with nogil:
                    done = msgsnd(msqid, message, <size_t>length, 0)
                    err = errno
            return 0 if done == 0 else 1
        finally:
            if message != <char *>stack:
                PyMem_Free(message)

    def recv_bytes(self, maxlength=None, timeout=None):
        cdef ssize_t got
        if maxlength is None and timeout is None and self._fast_id >= 0 and self._fast_accept_max >= 0:
            got = self._receive()
            if got >= 0:
                message = PyBytes_FromStringAndSize(self._rbuf + sizeof(long), got)
                if 0 < got <= self._fast_accept_max and got < self._fast_size:
                    return message
                return self._received_other(message, maxlength, timeout)
            # Gone, oversized or another error: nothing was taken; the general path reports it.
        return BaseChannel.recv_bytes(self, maxlength, timeout)

    cdef ssize_t _receive(self) except -3:
        """msgrcv one message of our type into the buffer: its length, or -1
        when the general path must try."""
        cdef ssize_t got
        cdef int err
        cdef int msqid = self._fast_id
        cdef long mtype = self._fast_recv_type
        cdef size_t room = <size_t>self._fast_size
        cdef char *rbuf = self._rbuf
        got = msgrcv(msqid, rbuf, room, mtype, IPC_NOWAIT)
        err = errno
        while got < 0 and (err == ENOMSG or err == EINTR):
            if err == EINTR and PyErr_CheckSignals() < 0:
                return -3
            with nogil:
                got = msgrcv(msqid, rbuf, room, mtype, 0)
                err = errno
        return got if got >= 0 else -1
