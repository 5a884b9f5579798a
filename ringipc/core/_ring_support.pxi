# Part of ringipc/core/_ring.pyx (included there, compiled as one module): clocks, copies, deadlines, the
# one place where a ring status becomes a Python exception, and the module's
# functions about segments and processes.

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


def segment_creator_pid(name):
    """The creator pid recorded in ring `name`'s header (validates it first);
    looking neither counts as holding the segment nor ever removes it."""
    cdef Ring ring = Ring._from_handle(SegmentHandle.open(name, observer=True))
    try:
        return ring._r.hdr.creator_pid
    finally:
        ring.close()


def pid_alive(int32_t pid, uint32_t start=0):
    """Whether `pid` runs and, if `start` (a process_start() stamp) is not 0,
    is the process that started then rather than a later holder of the pid."""
    return bool(c.rip_pid_alive(pid, start))


def process_start(int32_t pid):
    """The start stamp ringipc records beside `pid` in the segment: the low
    32 bits of its start time in clock ticks since boot, 0 if unreadable."""
    return c.rip_process_start(pid)


def segment_size(capacity):
    """Bytes of shared memory a ring of `capacity` takes (data, per-cell
    metadata and header); ValueError if no ring can be that large."""
    cdef uint64_t ncells = c.rip_cells_for_capacity(capacity)
    if ncells == 0:
        raise ValueError(f"capacity {capacity} is out of range")
    return c.rip_segment_size(ncells)
