# Part of ringipc/core/_ring.pyx (included there, compiled as one module):
# doorbells (csrc/ring_bell.c).  ringipc.core.doorbell owns the socket; these
# put its name in this handle's slot and arm it.  All run under the GIL, as
# every other claim of the handle's slot does.

BELL_PREFIX = c.RIP_BELL_PREFIX.decode()  # doorbell sockets: "\0" + BELL_PREFIX + 16 hex digits


cdef object _bell_install(Ring ring, bint writer, object name):
    """True if installed; False if this handle has a bell in that direction."""
    cdef uint64_t n = name
    cdef c.rip_status st
    ring._check_open()
    st = c.rip_ensure_wait_slot(&ring._r)
    if st == c.RIP_OK:
        st = c.rip_bell_install(&ring._r, writer, n)
    if st == c.RIP_BUSY:
        return False
    if st != c.RIP_OK:
        _raise_status(st, ring, 0, writer)
    return True


cdef object _bell_arm(Ring ring, bint writer, object length):
    """Arm the bell; True if the ring is ready already (no ring will come
    for this arm unless something changes again)."""
    cdef uint64_t n = length
    cdef int ready
    ring._check_open()
    ready = c.rip_bell_arm(&ring._r, writer, n)
    if ready < 0:
        raise RingError(f"ring {ring.name!r}: arm a doorbell only after installing it")
    if not ready:
        # Not ready: the caller is about to wait on its descriptor.  Count
        # it as a stall, so that a claim a dead peer left open is recovered
        # by waiters on descriptors too (see _note_stall).
        ring._note_stall(_now())
    return bool(ready)


cdef int _notify_writers(Ring ring) except -1:
    """Wake writers' sleepers and bells as a release does (for room made
    outside the ring, such as a bounded queue's slot)."""
    if ring._has_view:
        c.rip_notify_writers(&ring._r)
    return 0


def read_position(Ring ring):
    """Readers' claim position in `ring`: it grows with every message any
    process takes, so the same value twice means nothing was taken between
    (ringipc.mp.readiness keeps a descriptor exact with it)."""
    ring._check_open()
    return c.rip_read_position(&ring._r)


cdef int _bell_disarm(Ring ring, bint writer) except -1:
    if ring._has_view:
        c.rip_bell_disarm(&ring._r, writer)
    return 0


def _bell_sender_fd():
    """Test hook: this process's bell-sending socket, or -1 before the first ring."""
    return c.rip_bell_sender_fd()


def _bell_spin(Ring ring, bint writer, object length, object seconds):
    """Busy-poll the ring (GIL released: other threads run) for up to
    `seconds` before the caller arms its bell; True once it is ready.
    Counted as a waiter, so a close from another thread waits for it."""
    cdef uint64_t n = length
    cdef uint64_t ns = <uint64_t>(seconds * 1e9)
    cdef int ready
    ring._check_open()
    ring._waiting += 1
    with nogil:
        ready = c.rip_spin_ready(&ring._r, writer, n, ns)
    ring._waiting -= 1
    if ring._close_pending:
        if ring._waiting == 0:
            ring._finish_close()
        ring._check_open()
    return bool(ready)
