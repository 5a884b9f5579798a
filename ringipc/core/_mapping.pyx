# cython: language_level=3
"""A shared mapping of a segment's file that keeps no descriptor of its own.

Python's ``mmap.mmap`` duplicates the descriptor it maps and keeps the copy
for as long as the mapping lives.  A segment handle already keeps one
descriptor (to hand the segment to children and to hold its attach lock),
so with ``mmap`` every ring, topic and lock would cost two; a process with
many queues would run into RLIMIT_NOFILE twice as early.  This mapping is
made with mmap(2) directly and exports its memory through the buffer
protocol, like ``mmap``: ``close()`` refuses (BufferError) while a buffer of
it is still exported, so memory in use is never unmapped under a reader.
"""
from cpython.buffer cimport PyBuffer_FillInfo
from libc.errno cimport errno
from posix.mman cimport MAP_FAILED, MAP_SHARED, PROT_READ, PROT_WRITE, mmap, munmap

import os


cdef class SharedMapping:
    cdef void *_addr
    cdef Py_ssize_t _size
    cdef Py_ssize_t _exports

    def __cinit__(self, int fd, Py_ssize_t size):
        if size <= 0:
            raise ValueError(f"a mapping needs a positive size, not {size}")
        cdef void *addr
        with nogil:
            addr = mmap(NULL, <size_t>size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        if addr == MAP_FAILED:
            raise OSError(errno, os.strerror(errno))
        self._addr = addr
        self._size = size

    def __getbuffer__(self, Py_buffer *view, int flags):
        if self._addr == NULL:
            raise ValueError("mapping is closed")
        PyBuffer_FillInfo(view, self, self._addr, self._size, 0, flags)
        self._exports += 1

    def __releasebuffer__(self, Py_buffer *view):
        self._exports -= 1

    def __len__(self):
        return self._size

    @property
    def closed(self):
        return self._addr == NULL

    def close(self):
        """Unmap; BufferError while a buffer of it is exported.  Idempotent."""
        if self._addr == NULL:
            return
        if self._exports:
            raise BufferError("cannot close a mapping while buffers of it are exported")
        munmap(self._addr, <size_t>self._size)
        self._addr = NULL

    def __dealloc__(self):
        # Exported buffers hold a reference to this object: none is left here.
        if self._addr != NULL:
            munmap(self._addr, <size_t>self._size)
            self._addr = NULL
