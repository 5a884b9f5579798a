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
"""
from cpython.buffer cimport PyBUF_ANY_CONTIGUOUS, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

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
    """
    uint64_t bulk_load(void *p) nogil
    void bulk_store(void *p, uint64_t v) nogil
    int bulk_cas(void *p, uint64_t expected, uint64_t desired) nogil

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
