# cython: language_level=3
"""Copies of large buffers without the GIL, and atomic words in shared memory.

``memoryview`` slice assignment and ``bytes(view)`` copy while holding the GIL,
so a thread copying a 16 MiB frame stops every other thread of the process
for milliseconds.  These copy with the GIL released from NOGIL_COPY bytes on
(the ring's threshold: below it dropping and retaking the GIL costs more than
the copy), and ``bytes_of``/``bytearray_of`` make their result uninitialised
first: ``bytearray(n)`` would zero-fill it, a second pass over the memory.

The atomic words are the state of a large-object slab (core/large.py):
shared between processes, so they need real C11 atomics, not Python stores.

A *bell* is a page of shared memory on which a sender whose slabs are all in
use sleeps until a receiver hands one back (core/slabs.py).  Word 0 is a
futex sequence; the word at BELL_WAITERS counts sleepers.  The lost wake-up
argument is the ring's (csrc/ring_wait.c):

    sleeper:  waiters++ ; F ; v = seq ; look at the slabs ; futex_wait(seq == v)
    ringer:   hand a slab back ; F ; if (waiters) { seq++ ; futex_wake }

Either the sleeper's look sees the slab handed back, or the ringer sees the
sleeper counted and bumps `seq`, so the sleep returns at once.  A ringer that
finds nobody waiting makes no system call.
"""
from cpython.buffer cimport PyBUF_ANY_CONTIGUOUS, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

cdef extern from *:
    """
    #include <stdatomic.h>
    #include <stdint.h>
    static inline uint64_t bulk_load(void *p) {
        return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_acquire);
    }
    static inline void bulk_store(void *p, uint64_t v) {
        atomic_store_explicit((_Atomic uint64_t *)p, v, memory_order_release);
    }
    static inline int bulk_cas(void *p, uint64_t expected, uint64_t desired) {
        return atomic_compare_exchange_strong_explicit((_Atomic uint64_t *)p, &expected, desired,
                                                       memory_order_acq_rel, memory_order_acquire);
    }
    #include <errno.h>
    #include <limits.h>
    #include <time.h>
    #ifdef __linux__
    #include <linux/futex.h>
    #include <sys/syscall.h>
    #include <unistd.h>
    #endif
    #define BELL_WAITERS 64  /* its own cache line: sleepers come and go while ringers load it */
    static inline _Atomic uint32_t *bell_word(void *p, int offset) {
        return (_Atomic uint32_t *)((char *)p + offset);
    }
    static inline uint32_t bell_enter(void *p) {
        atomic_fetch_add_explicit(bell_word(p, BELL_WAITERS), 1, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
        return atomic_load_explicit(bell_word(p, 0), memory_order_seq_cst);
    }
    static inline void bell_leave(void *p) {
        atomic_fetch_sub_explicit(bell_word(p, BELL_WAITERS), 1, memory_order_seq_cst);
    }
    static inline int bell_ring(void *p) {
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(bell_word(p, BELL_WAITERS), memory_order_seq_cst) == 0)
            return 0;
        atomic_fetch_add_explicit(bell_word(p, 0), 1, memory_order_seq_cst);
    #ifdef __linux__
        /* Shared futex: the page is mapped by other processes.  All: each
         * sleeper looks for a slab of its own size. */
        syscall(SYS_futex, (uint32_t *)p, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    #endif
        return 1;
    }
    /* 0: woken (or the sequence had moved), 1: the deadline passed,
     * 2: interrupted by a signal.  Without futexes: a short nap, as woken. */
    static int bell_sleep(void *p, uint32_t seen, const struct timespec *deadline) {
    #ifdef __linux__
        long rc = syscall(SYS_futex, (uint32_t *)p, FUTEX_WAIT_BITSET, seen, deadline, NULL,
                          FUTEX_BITSET_MATCH_ANY);
        if (rc == 0 || errno == EAGAIN)
            return 0;
        if (errno == ETIMEDOUT)
            return 1;
        return errno == EINTR ? 2 : 0;
    #else
        struct timespec pause = {0, 200000};
        nanosleep(&pause, NULL);
        return 0;
    #endif
    }
    """
    uint64_t bulk_load(void *p) nogil
    void bulk_store(void *p, uint64_t v) nogil
    int bulk_cas(void *p, uint64_t expected, uint64_t desired) nogil
    uint32_t bell_enter(void *p) nogil
    void bell_leave(void *p) nogil
    int bell_ring(void *p) nogil
    int bell_sleep(void *p, uint32_t seen, const timespec *deadline) nogil

NOGIL_COPY = 64 * 1024
cdef Py_ssize_t _NOGIL = NOGIL_COPY


cdef inline void _copy(char *dst, const char *src, Py_ssize_t n):
    if n >= _NOGIL:
        with nogil:
            memcpy(dst, src, <size_t>n)
    elif n:
        memcpy(dst, src, <size_t>n)


def copy_into(dst, src):
    """Copy every byte of `src` into `dst` (writable); both contiguous, same size."""
    cdef Py_buffer d, s
    PyObject_GetBuffer(dst, &d, PyBUF_WRITABLE | PyBUF_ANY_CONTIGUOUS)
    try:
        PyObject_GetBuffer(src, &s, PyBUF_ANY_CONTIGUOUS)
        try:
            if d.len != s.len:
                raise ValueError(f"copy of {s.len} bytes into a buffer of {d.len}")
            _copy(<char *>d.buf, <const char *>s.buf, s.len)
        finally:
            PyBuffer_Release(&s)
    finally:
        PyBuffer_Release(&d)


def bytes_of(src):
    """`src`'s bytes as a new ``bytes`` object (one pass)."""
    cdef Py_buffer s
    PyObject_GetBuffer(src, &s, PyBUF_ANY_CONTIGUOUS)
    try:
        out = PyBytes_FromStringAndSize(NULL, s.len)
        _copy(PyBytes_AS_STRING(out), <const char *>s.buf, s.len)
        return out
    finally:
        PyBuffer_Release(&s)


def bytearray_of(src):
    """`src`'s bytes as a new ``bytearray`` (one pass, no zero-fill first)."""
    cdef Py_buffer s
    PyObject_GetBuffer(src, &s, PyBUF_ANY_CONTIGUOUS)
    try:
        out = PyByteArray_FromStringAndSize(NULL, s.len)
        _copy(PyByteArray_AS_STRING(out), <const char *>s.buf, s.len)
        return out
    finally:
        PyBuffer_Release(&s)


cdef char *_word(object buf, Py_ssize_t offset, Py_buffer *b) except NULL:
    PyObject_GetBuffer(buf, b, PyBUF_WRITABLE | PyBUF_ANY_CONTIGUOUS)
    if offset < 0 or offset % 8 or offset + 8 > b.len or (<size_t>b.buf) % 8:
        PyBuffer_Release(b)
        raise ValueError(f"no aligned 8-byte word at offset {offset}")
    return <char *>b.buf + offset


def load_u64(buf, Py_ssize_t offset):
    """The word at `offset` of the shared buffer `buf` (acquire)."""
    cdef Py_buffer b
    cdef char *p = _word(buf, offset, &b)
    cdef uint64_t v = bulk_load(p)
    PyBuffer_Release(&b)
    return v


def store_u64(buf, Py_ssize_t offset, uint64_t value):
    """Set the word at `offset` (release: what was written before is seen first)."""
    cdef Py_buffer b
    cdef char *p = _word(buf, offset, &b)
    bulk_store(p, value)
    PyBuffer_Release(&b)


def cas_u64(buf, Py_ssize_t offset, uint64_t expected, uint64_t desired):
    """Replace the word at `offset` by `desired` if it is `expected`; whether it was."""
    cdef Py_buffer b
    cdef char *p = _word(buf, offset, &b)
    cdef int done = bulk_cas(p, expected, desired)
    PyBuffer_Release(&b)
    return bool(done)


BELL_SIZE = 128  # bytes a bell needs (aligned to 8)


cdef char *_bell(object buf, Py_buffer *b) except NULL:
    PyObject_GetBuffer(buf, b, PyBUF_WRITABLE | PyBUF_ANY_CONTIGUOUS)
    if b.len < BELL_SIZE or (<size_t>b.buf) % 64:
        PyBuffer_Release(b)
        raise ValueError("a bell needs 128 bytes, 64-byte aligned")
    return <char *>b.buf


def bell_ring_if_waited(buf):
    """Wake whoever sleeps on the bell `buf`; True if anybody was counted
    (only then is a system call made)."""
    cdef Py_buffer b
    cdef char *p = _bell(buf, &b)
    cdef int rang = bell_ring(p)
    PyBuffer_Release(&b)
    return bool(rang)


def bell_enter_wait(buf):
    """Count this thread as a sleeper of `buf`; returns the sequence to pass
    to bell_sleep_until (look at the condition again after this)."""
    cdef Py_buffer b
    cdef char *p = _bell(buf, &b)
    cdef uint32_t seen = bell_enter(p)
    PyBuffer_Release(&b)
    return seen


def bell_leave_wait(buf):
    """Undo bell_enter_wait."""
    cdef Py_buffer b
    cdef char *p = _bell(buf, &b)
    bell_leave(p)
    PyBuffer_Release(&b)


def bell_sleep_until(buf, uint32_t seen, double seconds):
    """Sleep on `buf` for at most `seconds` unless its sequence is no longer
    `seen`; True if woken (or it had moved), False on time-out.  A signal
    ends the sleep and its Python handler runs here (KeyboardInterrupt)."""
    cdef Py_buffer b
    cdef char *p = _bell(buf, &b)
    cdef timespec ts
    cdef int rc
    cdef double until
    try:
        clock_gettime(CLOCK_MONOTONIC, &ts)
        until = ts.tv_sec + ts.tv_nsec * 1e-9 + (seconds if seconds > 0 else 0.0)
        ts.tv_sec = <long>until
        ts.tv_nsec = <long>((until - <double>ts.tv_sec) * 1e9)
        with nogil:
            rc = bell_sleep(p, seen, &ts)
    finally:
        PyBuffer_Release(&b)
    PyErr_CheckSignals()
    return rc != 1
