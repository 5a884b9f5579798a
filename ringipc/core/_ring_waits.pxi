# Included by _ring.pyx: how a handle waits for the ring to change, and when
# a handle that makes no progress looks for dead peers' claims.  Module
# functions (the Ring methods _wait and _note_stall call them) so that the
# handle's file keeps to its lifetime and its claims.

RECOUNT_AFTER_IDLE_WAKES = c.RIP_RECOUNT_AFTER_IDLE_WAKES  # see csrc/ring_waiters.c
RECOUNT_AFTER_SKIPPED_WAKES = c.RIP_RECOUNT_AFTER_SKIPPED_WAKES


cdef int _ring_note_stall(Ring self, double now) except -1:
    """Called whenever this handle found no progress (an empty or full
    ring, blocking or not).  Once it has made none for RECOVERY_AFTER,
    it looks for dead peers' claims every RECOVERY_EVERY, however its
    waits end: waiters woken over and over by the other side (whose
    slices never time out) and callers spinning on block=False must
    reach recovery as surely as a sleeper that times out."""
    cdef uint32_t recovered
    # Stalled time is kept on the handle, not per call: callers that wait
    # in short timeouts (Connection, streams) must still reach recovery.
    if self._stalled_since < 0:
        self._stalled_since = now
        return 0
    if now - self._stalled_since < RECOVERY_AFTER or now - self._recovered_at < RECOVERY_EVERY:
        return 0
    self._recovered_at = now
    with nogil:
        c.rip_recover(&self._r, &recovered)
    return 0


cdef int _ring_wait(Ring self, bint writer, uint64_t length, double deadline) except -1:
    """Sleep one slice; returns 1 once the deadline has passed, else 0."""
    cdef timespec ts
    cdef double now = _now(), until
    cdef c.rip_status st
    self._note_stall(now)
    if deadline >= 0 and now >= deadline:
        return 1
    until = now + WAIT_SLICE
    if deadline >= 0 and deadline < until:
        until = deadline
    ts.tv_sec = <long>until
    ts.tv_nsec = <long>((until - <double>ts.tv_sec) * 1e9)
    # A sleeper is counted in its handle's slot: take it here, under the
    # GIL, so threads sharing the handle cannot both take one.
    st = c.rip_ensure_wait_slot(&self._r)
    if st != c.RIP_OK:
        _raise_status(st, self, length, writer)
    self._flush_notifies()
    self._waiting += 1
    with nogil:
        if writer:
            st = c.rip_wait_writable(&self._r, length, &ts, self.spin)
        else:
            st = c.rip_wait_readable(&self._r, &ts, self.spin)
    self._waiting -= 1
    if self._close_pending:
        # Another thread closed the handle while we slept on its mapping.
        if self._waiting == 0:
            self._finish_close()
        self._check_open()
    PyErr_CheckSignals()
    return 0


cdef int _ring_stalled(Ring self, c.rip_status st, bint writer, uint64_t length, bint block,
                        double *deadline, object timeout) except -1:
    """After a claim failed with `st`: raise, or wait a slice for room
    (writer) or data; returns when it is worth claiming again.
    *deadline starts at -2 (not computed yet: the fast path never reads
    the clock)."""
    cdef c.rip_status waiting_for = c.RIP_FULL if writer else c.RIP_EMPTY
    if st != waiting_for or not block:
        if st == waiting_for:
            _ring_note_stall(self, _now())
        _raise_status(st, self, length, writer)
    if deadline[0] == -2.0:
        deadline[0] = _deadline(timeout)
    if _ring_wait(self, writer, length, deadline[0]):
        if writer:
            raise queue.Full
        raise queue.Empty
    return 0
