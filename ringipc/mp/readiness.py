"""Readiness of a queue's ring as a file descriptor, and the queue's reader/writer ends.

Standard-library code reaches into the queues it gets from a context:
``multiprocessing.pool`` and ``concurrent.futures.process`` wait on
``queue._reader`` with ``multiprocessing.connection.wait()`` (which polls
``_reader.fileno()``), call ``_reader.recv()``/``poll()`` and
``_writer.send()``/``close()``, and take ``_rlock``.  :class:`ReaderEnd` and
:class:`WriterEnd` give a ringipc queue those two ends.

A ring has no descriptor.  :class:`Watch` makes one for the reading process,
and only once somebody asks for ``fileno()``: an eventfd that is non-zero
exactly while the ring holds a message.

* A watcher thread sleeps on the ring as a reader would (``Ring.poll``: the
  ring's futex, so writers wake it only because a sleeper is counted, the same
  wake-up every blocked ``get`` costs) and lights the eventfd when a message
  is there.  While it is lit, the thread does not sleep on the ring, so
  writers are not made to wake anybody per message.
* Every receive through this process's queue object, after taking a message,
  puts the eventfd out if the ring is now empty.
* Both decisions are made under one lock, each on a fresh look at the ring,
  so the last decision always matches the ring as it was when it was made:
  a message that arrives later lights it again, a receive that empties the
  ring puts it out.  ``fileno()`` (called by every ``wait()``) also decides
  afresh, so a wait starts exact.  A message taken by *another* process is
  noticed by the thread within ``SLICE`` seconds (it looks again every slice
  while lit); until then the eventfd may say ready with nothing there.

Cost: nothing per message while no descriptor was asked for (no thread, no
eventfd).  While watched: one eventfd write when the ring goes from empty to
non-empty (plus the futex wake that lets the thread see it) and one eventfd
read when a receive empties it, so a busy queue pays per burst, not per
message.  The thread and eventfd go with ``close()``, the queue, or the
process (an exit hook stops the thread before the rings are released).
"""
import os
import threading
import weakref

from multiprocessing import util

from .pickling import dumps, loads

SLICE = 0.05  # seconds: how often the watcher looks again on its own

_watches = weakref.WeakSet()


class _State:
    """What the watcher thread shares with its Watch (the thread never holds
    the Watch itself, so dropping the queue stops the thread at once)."""

    def __init__(self, ring):
        self.ring = ring
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.cond = threading.Condition(threading.Lock())
        self.lit = False
        self.active = True

    def set(self, lit):
        # Called with the condition held.
        if lit is self.lit:
            return
        if lit:
            os.eventfd_write(self.fd, 1)
        else:
            try:
                os.eventfd_read(self.fd)
            except BlockingIOError:
                pass
            self.cond.notify()
        self.lit = lit


class Watch:
    """An eventfd that is readable exactly while `ring` holds a message."""

    def __init__(self, ring):
        self._s = state = _State(ring)
        self._thread = threading.Thread(target=_run, args=(state,), name="ringipc-readiness", daemon=True)
        _watches.add(self)
        # Exit priority: before sharedstate's exit hook (-20) lets go of the rings.
        self._finalizer = util.Finalize(self, _stop, (state, self._thread), exitpriority=5)
        self._thread.start()

    @property
    def active(self):
        return self._s.active

    def fileno(self):
        self.refresh()
        return self._s.fd

    def refresh(self):
        """Make the eventfd say what the ring holds now."""
        s = self._s
        with s.cond:
            if s.active:
                s.set(s.ring.poll(0))

    def consumed(self):
        """After this process took a message: put the eventfd out if the ring is empty."""
        s = self._s
        if s.lit and s.active:
            with s.cond:
                if s.active and s.lit and not s.ring.poll(0):
                    s.set(False)

    def close(self):
        self._finalizer()


def _stop(state, thread):
    with state.cond:
        state.active = False
        state.cond.notify_all()
    if thread is not threading.current_thread() and thread.ident is not None:
        thread.join()
    os.close(state.fd)
    state.ring = None


def _run(s):
    ring = s.ring
    cond = s.cond
    while True:
        with cond:
            if not s.active:
                return
            if s.lit:
                # A receive here puts it out and notifies; another process's
                # receive is noticed when the slice ends.
                cond.wait(SLICE)
                if s.active:
                    s.set(ring.poll(0))
                continue
        try:
            ready = ring.poll(SLICE)
        except (ValueError, OSError):
            return  # the ring was closed under us
        if ready:
            with cond:
                if s.active:
                    s.set(ring.poll(0))


def _after_fork_in_child():
    # The thread did not come along; the eventfd is the parent's copy.
    for watch in list(_watches):
        watch._s.active = False
        watch._finalizer.cancel()
        try:
            os.close(watch._s.fd)
        except OSError:
            pass
    _watches.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _End:
    """What both ends share: a weak reference to their queue, and closed state."""

    def __init__(self, queue):
        # Weak: the queue holds its ends, and a cycle would keep its ring
        # (and name) alive until the cycle collector ran.
        self._ref = weakref.ref(queue)
        self._closed = False

    @property
    def _q(self):
        queue = self._ref()
        if queue is None:
            raise OSError("handle is closed: its queue is gone")
        return queue

    @property
    def closed(self):
        queue = self._ref()
        return self._closed or queue is None or queue._closed

    def _check(self):
        if self._closed:
            raise OSError("handle is closed")


class ReaderEnd(_End):
    """``queue._reader``: what multiprocessing's reading Connection offers stdlib code."""

    def fileno(self):
        self._check()
        return self._q._watched().fileno()

    def poll(self, timeout=0.0):
        self._check()
        return self._q._ring.poll(timeout)

    def recv(self):
        self._check()
        return self._q.get()

    def recv_bytes(self, maxlength=None):
        self._check()
        return dumps(self._q.get())

    def close(self):
        if not self._closed:
            self._closed = True
            self._q._stop_watch()

    def __repr__(self):
        return f"<reader of {self._ref()!r}>"


class WriterEnd(_End):
    """``queue._writer``: send/close as on multiprocessing's writing Connection."""

    def send(self, obj):
        self._check()
        self._q.put(obj)

    def send_bytes(self, data):
        self._check()
        self._q.put(loads(data))

    def close(self):
        self._closed = True

    def __repr__(self):
        return f"<writer of {self._ref()!r}>"


class EndsMixin:
    """``_reader``, ``_writer``, ``_rlock`` and ``_poll`` for a ringipc queue.

    The queue provides ``_ring``, ``_closed``, ``get()`` and ``put()``, calls
    ``self._watch.consumed()`` after every get while ``_watch`` is set, and
    ``_stop_watch()`` when it closes.  Ends are per process: not pickled."""

    _watch = None
    _ends = None

    def _make_ends(self):
        self._ends = (ReaderEnd(self), WriterEnd(self), threading.Lock())
        return self._ends

    @property
    def _reader(self):
        return (self._ends or self._make_ends())[0]

    @property
    def _writer(self):
        return (self._ends or self._make_ends())[1]

    @property
    def _rlock(self):
        # multiprocessing's is a process-shared lock that every get takes;
        # ringipc's gets need none.  Pool.terminate() takes it to keep its
        # own process from reading, which a per-process lock does.
        return (self._ends or self._make_ends())[2]

    @property
    def _poll(self):
        return self._reader.poll

    def _watched(self):
        watch = self._watch
        if watch is None or not watch.active:
            watch = self._watch = Watch(self._ring)
        return watch

    def _stop_watch(self):
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()
