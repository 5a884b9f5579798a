"""A sender whose slabs are all in use sleeps on its pool's bell (core/slabs.py,
core/_bulk.pyx) until a receiver hands one back: woken by the hand-back, not
by a poll; its timeout honoured; Ctrl-C ends the wait; a receiver killed
holding slabs never wedges it.  Each test acts exactly while the sender is
counted as asleep (the bell's waiter count), never after a sleep."""
import contextlib
import multiprocessing
import os
import signal
import struct
import time

import pytest

from _proc_support import reap
from ringipc import Queue
from ringipc.core import _segment, slabs
from ringipc.core._bulk import load_u64

np = pytest.importorskip("numpy", reason="NumPy is optional; these cases need it (it is in the test extra)")

MIB = 1 << 20
POOL = slabs.POOL_SLABS


def _names(ring, pid, bells):
    return {n for n in os.listdir("/dev/shm")
            if n.startswith(f"{ring.name}-L{pid}-") and (f"-{slabs.BELL_TAG}" in n) == bells}


def _until_waiting(ring, pid, limit=60.0):
    """Yield the CPU until the bell of `pid`'s pool counts a sleeper."""
    give_up = time.monotonic() + limit
    bell = None
    try:
        while time.monotonic() < give_up:
            if bell is None:
                found = _names(ring, pid, bells=True)
                if found:
                    bell, _ = _segment.open_existing(found.pop())
            if bell is not None and load_u64(bell, 64) & 0xFFFFFFFF:
                return
            os.sched_yield()
        raise AssertionError(f"process {pid} never waited for a slab")
    finally:
        if bell is not None:
            bell.close()


def _fill_then_put(q, report, give_up):
    """Send POOL objects (the receiver leases them all), then one more."""
    slabs.GIVE_UP = give_up
    for i in range(POOL):
        q.put(np.full(MIB // 8, i))
    pool = slabs._pools[q._ring.name]
    try:
        q.put(np.full(MIB // 8, 99))
        report.put(("put", pool.sleeps, pool.woken))
    except KeyboardInterrupt:
        report.put(("interrupted", pool.sleeps, pool.woken))


def _lease_pool(q):
    return [q.get_lease(timeout=30) for _ in range(POOL)]


@contextlib.contextmanager
def _sender_waiting_for_a_slab():
    """(queue, report, sender process, leases): a forked sender asleep on its
    pool's bell while this process leases every slab of the pool."""
    ctx = multiprocessing.get_context("fork")
    q, report = Queue(), ctx.SimpleQueue()
    leases = []
    proc = ctx.Process(target=_fill_then_put, args=(q, report, 60.0))
    proc.start()
    try:
        leases += _lease_pool(q)
        _until_waiting(q._ring, proc.pid)
        yield q, report, proc, leases
    finally:
        for lease in leases:
            lease.release()
        reap(proc)
        q.close()
        q.join_thread()
        report.close()


def test_a_release_in_another_process_wakes_the_waiting_sender():
    with _sender_waiting_for_a_slab() as (q, report, proc, leases):
        pool = _names(q._ring, proc.pid, bells=False)
        assert len(pool) == POOL
        leases.pop(0).release()
        what, sleeps, woken = report.get()
        # GIVE_UP is a minute and a sleep lasts WAIT_SLICE: a sender that only
        # polled would report no wake-up at all.
        assert what == "put" and woken >= 1 and sleeps >= woken, (what, sleeps, woken)
        assert _names(q._ring, proc.pid, bells=False) == pool, "the released slab, no one-off segment"
        assert (q.get(timeout=30) == 99).all()
        for i, lease in enumerate(leases, 1):
            assert (lease.obj == i).all(), "a leased slab was overwritten"
    assert proc.exitcode == 0


def test_ctrl_c_interrupts_a_put_waiting_for_a_slab():
    with _sender_waiting_for_a_slab() as (q, report, proc, leases):
        os.kill(proc.pid, signal.SIGINT)
        what, sleeps, woken = report.get()
        assert what == "interrupted" and sleeps >= 1, (what, sleeps, woken)
        proc.join(30)
        assert proc.exitcode == 0


def test_a_waiting_put_honours_its_timeout_then_uses_a_one_off_segment(monkeypatch):
    monkeypatch.setattr(slabs, "GIVE_UP", 60.0)
    q = Queue()
    leases = []
    try:
        for i in range(POOL):
            q.put(np.full(MIB // 8, i))
            leases.append(q.get_lease(timeout=10))
        pool = slabs._pools[q._ring.name]
        start = time.monotonic()
        q.put(np.full(MIB // 8, 99), timeout=0.2)
        took = time.monotonic() - start
        assert 0.2 <= took < 30, took  # the deadline is the put's, not GIVE_UP's
        assert pool.sleeps >= 1 and pool.woken == 0, "nobody handed a slab back"
        assert len(_names(q._ring, os.getpid(), bells=False)) == POOL + 1, "a one-off segment"
        assert (q.get(timeout=10) == 99).all()
        for i, lease in enumerate(leases):
            assert (lease.obj == i).all()
    finally:
        for lease in leases:
            lease.release()
        q.close()
        q.join_thread()


def _lease_all_and_hang(q, ready):
    leases = _lease_pool(q)
    ready.put(len(leases))
    signal.pause()  # holds them until SIGKILLed


def test_a_consumer_killed_while_the_sender_sleeps_never_wedges_it():
    """The sender is asleep on the bell when the consumer holding every slab
    is SIGKILLed: it falls back to a one-off segment after GIVE_UP."""
    from ringipc.core import large
    ctx = multiprocessing.get_context("fork")
    q, ready, report = Queue(), ctx.SimpleQueue(), ctx.SimpleQueue()
    consumer = ctx.Process(target=_lease_all_and_hang, args=(q, ready))
    consumer.start()
    producer = ctx.Process(target=_fill_then_put, args=(q, report, 0.5))
    producer.start()
    try:
        assert ready.get() == POOL
        _until_waiting(q._ring, producer.pid)
        consumer.kill()
        consumer.join()
        what, sleeps, woken = report.get()
        assert what == "put" and woken == 0, (what, sleeps, woken)
        assert (q.get(timeout=30) == 99).all()
        producer.join(30)
        assert producer.exitcode == 0
    finally:
        reap(consumer)
        reap(producer)
        q.close()
        q.join_thread()
        ready.close()
        report.close()
    large.sweep(q._ring.name, only_dead=True, mine=True)  # what the creator does at its exit
    assert not _names(q._ring, producer.pid, bells=False) | _names(q._ring, producer.pid, bells=True)


def _one_full_slab(q):
    q.put(np.full(MIB // 8, 5))
    [slab] = _names(q._ring, os.getpid(), bells=False)
    mapping, _ = _segment.open_existing(slab)
    return mapping


def test_a_slab_header_naming_another_segment_never_rings_it():
    """The bell's name is read from shared memory: a header that names any
    segment but its own pool's bell is ignored, so a damaged or forged slab
    cannot make a receiver bump the first word of another object."""
    q = Queue()
    foreign = f"{q._ring.name}-L1-notabell"
    other = _segment.create(foreign, 4096)
    try:
        struct.pack_into("<II", other, 0, 0x1234, 0)
        struct.pack_into("<I", other, 64, 1)  # "a sleeper": a bell would be rung
        slab = _one_full_slab(q)
        struct.pack_into("<H", slab, slabs.BELL_NAME, len(foreign))
        slab[slabs.BELL_NAME + 2:slabs.BELL_NAME + 2 + len(foreign)] = foreign.encode()
        slab.close()
        assert (q.get(timeout=10) == 5).all()
        assert struct.unpack_from("<I", other, 0)[0] == 0x1234, "another segment's word was bumped"
    finally:
        other.close()
        _segment.unlink(foreign)
        q.close()
        q.join_thread()


def test_a_receive_whose_bell_is_gone_still_delivers():
    """A sender exiting between a receiver's hand-back and its ring removes
    the bell: nobody sleeps on it, and the receive returns its object."""
    q = Queue()
    try:
        _one_full_slab(q).close()
        [bell] = _names(q._ring, os.getpid(), bells=True)
        _segment.unlink(bell)
        assert (q.get(timeout=10) == 5).all()
    finally:
        q.close()
        q.join_thread()
