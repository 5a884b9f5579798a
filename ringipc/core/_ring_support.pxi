# Part of ringipc/core/_ring.pyx (included there, compiled as one module): clocks, copies, deadlines and the
# one place where a ring status becomes a Python exception.

cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef inline void _copy(void *dst, const void *src, uint64_t n):
    if n >= _NOGIL_COPY:
        with nogil:
            memcpy(dst, src, n)
    else:
        memcpy(dst, src, n)


def _cpus_available():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


cdef double _deadline(object timeout) except? -2:
    """-1 means no deadline; negative timeouts behave like 0, as in queue.Queue."""
    if timeout is None:
        return -1.0
    t = float(timeout)
    return _now() + (t if t > 0 else 0.0)


cdef int _raise_status(c.rip_status st, Ring ring, uint64_t length, bint writer) except -1:
    """The one place where a ring status becomes a Python exception."""
    if st == c.RIP_EMPTY:
        raise queue.Empty
    if st == c.RIP_FULL:
        raise queue.Full
    if st == c.RIP_TOO_BIG:
        raise MessageTooLarge(
            f"message of {length} bytes exceeds ring {ring.name!r}'s max_message_size of "
            f"{ring.max_message_size} bytes (half its capacity); create the ring with a larger capacity")
    if st == c.RIP_CLOSED:
        if writer:
            raise BrokenPipeError(f"ring {ring.name!r}: the reading side is closed")
        raise EOFError(f"ring {ring.name!r}: the writing side is closed and the ring is drained")
    if st == c.RIP_CORRUPT:
        raise CorruptSegment(f"ring {ring.name!r}: shared memory breaks the ring's invariants "
                             f"(a record length or position is out of range); nothing was read")
    if st == c.RIP_BUSY:
        side = "producer" if writer else "consumer"
        raise RingError(f"ring {ring.name!r} is SPSC and another live process is its {side}; "
                        f"use kind='mpmc' for several {side}s")
    if st == c.RIP_NO_SLOT:
        raise RingError(f"ring {ring.name!r}: more than {MAX_SLOTS} live processes use this MPMC ring")
    raise RingError(f"ring {ring.name!r}: unexpected status {<int>st}")
