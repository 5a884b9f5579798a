# Included by _topic.pyx: what publishers and subscribers share - their slot
# (csrc/topic_slots.c), the busy flag of a handle used by several threads,
# fork detection, and waiting in slices with recovery of dead processes.

@cython.no_gc_clear
cdef class _Handle:
    cdef Topic _topic
    cdef c.tp_handle _h
    cdef bint _open
    cdef bint _busy
    cdef bint _view_open
    cdef int _waiting
    cdef double _stalled_since
    cdef double _recovered_at
    cdef public uint32_t spin
    cdef object __weakref__

    def __cinit__(self):
        self._stalled_since = -1.0
        self._recovered_at = -1.0
        self.spin = DEFAULT_SPIN if _cpus_available() > 1 else 0

    cdef _setup(self, Topic topic):
        cdef const char *why = NULL
        self._topic = topic
        if c.tp_attach(&self._h, topic._view.buf, <uint64_t>topic._view.len, &why) != c.TP_OK:
            raise CorruptSegment(f"topic {topic.name!r}: {why.decode() if why != NULL else 'invalid header'}")
        self._open = True

    @property
    def name(self):
        return self._topic.name

    @property
    def topic(self):
        return self._topic

    @property
    def closed(self):
        return not self._open

    cdef int _check_open(self) except -1:
        if not self._open or not self._topic._has_view:
            raise ChannelClosed(f"topic {self._topic.name!r}: this handle is closed")
        return 0

    cdef int _enter(self) except -1:
        self._check_open()
        while self._busy:  # another thread of this process copies without the GIL
            with nogil:
                sched_yield()
            self._check_open()
        if self._view_open:
            raise RingError(f"topic {self._topic.name!r}: release the open view before using this handle again")
        self._busy = True
        if c.tp_forked(&self._h):
            try:
                self._after_fork()
            except BaseException:
                self._busy = False
                raise
        return 0

    cdef int _after_fork(self) except -1:
        return 0

    cdef int _note_stall(self, double now) except -1:
        if self._stalled_since < 0:
            self._stalled_since = now
            return 0
        if now - self._stalled_since < RECOVERY_AFTER or now - self._recovered_at < RECOVERY_EVERY:
            return 0
        self._recovered_at = now
        with nogil:
            c.tp_recover(&self._h)
        return 0

    cdef int _wait(self, int kind, double deadline) except -1:
        """One slice of waiting: kind 0 data, else the publisher status to wait
        out (TP_FULL or TP_BUSY).  Returns 1 once the deadline has passed."""
        cdef timespec ts
        cdef double now = _now(), until
        cdef c.tp_status st
        if kind != 0:
            self._note_stall(now)
        if deadline >= 0 and now >= deadline:
            return 1
        until = now + WAIT_SLICE
        if deadline >= 0 and deadline < until:
            until = deadline
        ts.tv_sec = <long>until
        ts.tv_nsec = <long>((until - <double>ts.tv_sec) * 1e9)
        self._waiting += 1
        with nogil:
            if kind == 0:
                st = c.tp_wait_readable(&self._h, &ts, self.spin)
            else:
                st = c.tp_wait_writable(&self._h, <c.tp_status>kind, &ts, self.spin)
        self._waiting -= 1
        if st == c.TP_NO_SLOT:
            _raise(st, self._topic.name)
        PyErr_CheckSignals()
        self._check_open()
        return 0

    # -- doorbells (csrc/topic_bell.c), for ringipc.core.doorbell.Doorbell,
    # which calls these as it calls a Ring's.  A subscriber's bell is for
    # data (writer=False), a publisher's for room or the lock (writer=True).
    cdef int _bell_side(self, bint writer) except -1:
        if writer != isinstance(self, Publisher):
            raise ValueError(f"topic {self._topic.name!r}: a {type(self).__name__}'s doorbell is "
                             f"{'a writer' if not writer else 'a reader'}'s (writer={not writer})")
        self._enter()  # after fork: this process's own slot first
        self._busy = False
        return 0

    def _bell_install(self, writer, name):
        """True if installed; False if this handle has a bell already."""
        self._bell_side(writer)
        cdef c.tp_status st = c.tp_bell_install(&self._h, writer, <uint64_t>name)
        if st == c.TP_BUSY:
            return False
        if st != c.TP_OK:
            _raise(st, self._topic.name)
        return True

    def _bell_arm(self, writer, length=0):
        """Arm the bell; True if the handle is ready already."""
        self._bell_side(writer)
        cdef int ready = c.tp_bell_arm(&self._h, writer)
        if ready < 0:
            raise RingError(f"topic {self._topic.name!r}: arm a doorbell only after installing it")
        if not ready and writer:
            # A lossless publisher about to wait on its descriptor looks for
            # dead subscribers as a blocked one does (see _note_stall).
            self._note_stall(_now())
        return bool(ready)

    def _bell_disarm(self, writer):
        if self._open and self._topic._has_view and not c.tp_forked(&self._h):
            c.tp_bell_disarm(&self._h, writer)

    def _another_handle(self):
        raise RingError(f"topic {self._topic.name!r}: this handle is watched already (by fileno() or an "
                        f"asyncio wrapper); watch each handle one way, or open another handle")

    def close(self):
        """Give up this handle's slot (a lossless publisher stops waiting for it)."""
        if self._open:
            self._open = False
            if self._topic._has_view:
                c.tp_close(&self._h)

    def __dealloc__(self):
        if self._open and self._topic is not None and self._topic._has_view:
            self._open = False
            c.tp_close(&self._h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
