# cython: language_level=3
"""Receive buffers for large objects, kept for reuse instead of returned to the kernel.

An array received by copy needs fresh memory of its size.  ``malloc`` serves
anything over 32 MiB (and often less) with a new ``mmap`` and gives it back
with ``munmap`` when the array dies, so each 256 MiB object costs 65,536 page
faults (the kernel zero-fills every page, and on a virtual machine that gives
freed memory back to its host each fault may also be the host's) plus an
``munmap``: measured, faulting fresh memory ran at under 1 GB/s where the copy
itself runs at 7-13.  A ``Block`` is such a buffer whose memory, when the last
reference to it goes, is parked in a small per-process cache instead; the
next large receive of a similar size takes it back, already faulted in.

Bounds: at most CACHE_BLOCKS blocks and CACHE_BYTES bytes parked (a block
freed when they are full displaces the one parked longest), only blocks of
at least MIN_BLOCK bytes (smaller ones are malloc's business), and a parked
block is reused only for an object of at least half its size.  Parked memory
stays resident: marking it ``MADV_FREE`` (so the kernel could take it back
under pressure) was measured and halved the rate of the next copy into it
(the kernel walks and cleans every page table entry, and the writes set them
dirty again).  ``trim()`` unmaps every parked block at once; a forked
child forgets its parent's (reusing them would copy every page on write).
"""
from cpython.buffer cimport PyBUF_ANY_CONTIGUOUS, PyBuffer_FillInfo, PyBuffer_Release, PyObject_GetBuffer
from libc.string cimport memcpy

cdef extern from "<sys/mman.h>" nogil:
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void *addr, size_t length)
    int PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS
    void *MAP_FAILED

MIN_BLOCK = 1 << 20
CACHE_BLOCKS = 2
CACHE_BYTES = 512 << 20
DEF _SLOTS = 2          # CACHE_BLOCKS (a C array needs a compile-time size)
cdef size_t _ROUND = 2 << 20   # sizes rounded up so that slightly different objects share blocks
cdef size_t _NOGIL = 64 * 1024  # as core/_bulk.pyx: below this a GIL round trip costs more than the copy

# The parked blocks: plain C, because a Block may die while the interpreter
# shuts down, when module globals are already gone.
cdef char *_parked[_SLOTS]
cdef size_t _parked_size[_SLOTS]
cdef size_t _parked_when[_SLOTS]   # when each was parked (the oldest goes first)
cdef size_t _parked_total = 0
cdef size_t _clock = 0


cdef void _evict_oldest() noexcept:
    global _parked_total
    cdef int i, oldest = -1
    for i in range(_SLOTS):
        if _parked[i] != NULL and (oldest < 0 or _parked_when[i] < _parked_when[oldest]):
            oldest = i
    if oldest >= 0:
        munmap(_parked[oldest], _parked_size[oldest])
        _parked_total -= _parked_size[oldest]
        _parked[oldest] = NULL


cdef void _give_back(char *base, size_t size) noexcept:
    # The block just freed is the likeliest to fit the next object: it
    # displaces the oldest parked one (a process that moved on from 4 MiB
    # to 16 MiB objects must not keep unmapping the 16 MiB ones).
    global _parked_total, _clock
    cdef int i
    if size < <size_t>MIN_BLOCK or size > <size_t>CACHE_BYTES:
        munmap(base, size)
        return
    while _parked_total + size > <size_t>CACHE_BYTES:
        _evict_oldest()
    for i in range(_SLOTS):
        if _parked[i] == NULL:
            break
    else:
        _evict_oldest()
        for i in range(_SLOTS):
            if _parked[i] == NULL:
                break
    _clock += 1
    _parked[i], _parked_size[i], _parked_when[i] = base, size, _clock
    _parked_total += size


cdef char *_take(size_t n, size_t *size) except NULL:
    """Memory for `n` bytes: a parked block of a fitting size, else a new mapping."""
    global _parked_total
    cdef int i
    cdef void *p
    for i in range(_SLOTS):
        if _parked[i] != NULL and n <= _parked_size[i] <= 2 * n:
            size[0] = _parked_size[i]
            _parked_total -= _parked_size[i]
            p, _parked[i] = _parked[i], NULL
            return <char *>p
    size[0] = (n + _ROUND - 1) // _ROUND * _ROUND
    p = mmap(NULL, size[0], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if p == MAP_FAILED:
        raise MemoryError(f"cannot map {size[0]} bytes for a received object")
    return <char *>p


cdef class Block:
    """A writable buffer of ``len(block)`` bytes whose memory is parked for
    reuse when the block is collected."""
    cdef char *base
    cdef size_t size
    cdef Py_ssize_t length

    def __cinit__(self, Py_ssize_t n):
        if n < 0:
            raise ValueError("negative length")
        self.base = _take(max(n, 1), &self.size)
        self.length = n

    def __len__(self):
        return self.length

    def __getbuffer__(self, Py_buffer *view, int flags):
        PyBuffer_FillInfo(view, self, self.base, self.length, 0, flags)

    def __releasebuffer__(self, Py_buffer *view):
        pass

    def __dealloc__(self):
        if self.base != NULL:
            _give_back(self.base, self.size)
            self.base = NULL


def block_of(src):
    """A Block holding a copy of `src` (contiguous), copied without the GIL when large."""
    cdef Py_buffer s
    PyObject_GetBuffer(src, &s, PyBUF_ANY_CONTIGUOUS)
    try:
        block = Block(s.len)
        if s.len >= <Py_ssize_t>_NOGIL:
            with nogil:
                memcpy(block.base, s.buf, <size_t>s.len)
        elif s.len:
            memcpy(block.base, s.buf, <size_t>s.len)
        return block
    finally:
        PyBuffer_Release(&s)


def parked():
    """(blocks, bytes) parked now (for tests and the docs' bounds)."""
    cdef int i, count = 0
    for i in range(_SLOTS):
        if _parked[i] != NULL:
            count += 1
    return count, _parked_total


def trim():
    """Unmap every parked block."""
    global _parked_total
    cdef int i
    for i in range(_SLOTS):
        if _parked[i] != NULL:
            munmap(_parked[i], _parked_size[i])
            _parked[i] = NULL
    _parked_total = 0


def forget_after_fork():
    """In a forked child: unmap the parent's parked blocks (copy-on-write copies)."""
    trim()
