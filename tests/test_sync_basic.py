"""ringipc.sync's primitives as objects: across start methods by pickling and
by name, their segments' lifetime and cleanup, and corrupt or foreign
segments refused with CorruptSegment."""
import multiprocessing
import os

import pytest

from _segment_poke import SHM, unique_name
from ringipc import CorruptSegment, Ring, cleanup, sync

PRIMITIVES = [sync.Lock, sync.Semaphore, sync.BoundedSemaphore, sync.Event]


def _in_child(lock, sem, event, done):
    with lock:
        sem.release()
    event.wait()
    done.set()


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_passed_to_children_they_are_the_same_objects(method):
    ctx = multiprocessing.get_context(method)
    lock, sem, event, done = sync.Lock(), sync.Semaphore(0), sync.Event(), sync.Event()
    try:
        lock.acquire()
        child = ctx.Process(target=_in_child, args=(lock, sem, event, done))
        child.start()
        assert not sem.acquire(timeout=0.2)  # the child waits for our lock
        lock.release()
        assert sem.acquire(timeout=30)
        event.set()
        assert done.wait(30)
        child.join(30)
        assert child.exitcode == 0
    finally:
        for prim in (lock, sem, event, done):
            prim.close()


@pytest.mark.parametrize("kind", PRIMITIVES)
def test_attach_by_name_and_cleanup(kind):
    prim = kind(name=f"sync-test-{os.getpid()}-{kind.__name__}")
    path = SHM + prim.name
    assert os.stat(path).st_mode & 0o777 == 0o600
    other = kind.attach(prim.name)
    assert type(other) is kind
    other.close()  # an attached handle never removes the name
    assert os.path.exists(path)
    assert {seg["name"]: seg["orphaned"] for seg in cleanup.list_segments()}[prim.name] is False
    prim.close()
    assert not os.path.exists(path)
    with pytest.raises(ValueError, match="closed"):
        prim.acquire() if kind is not sync.Event else prim.set()


def test_attach_as_the_wrong_kind_or_a_ring_is_refused():
    lock = sync.Lock(name=unique_name())
    try:
        with pytest.raises(CorruptSegment, match="different kind"):
            sync.Semaphore.attach(lock.name)
        with Ring(4096, name=unique_name()) as ring, pytest.raises(CorruptSegment, match="bad magic"):
            sync.Lock.attach(ring.name)
    finally:
        lock.close()


@pytest.mark.parametrize("offset, value, why", [
    (0, 0x1234, "bad magic"),
    (8, 99, "incompatible"),
    (64, (1 << 22) + 1, "out of range"),   # a lock word no pid can be
])
def test_corrupt_lock_headers_are_refused(offset, value, why):
    lock = sync.Lock(name=unique_name())
    try:
        with open(SHM + lock.name, "r+b") as f:
            f.seek(offset)
            f.write(value.to_bytes(8 if offset == 0 else 4, "little"))
        with pytest.raises(CorruptSegment, match=why):
            sync.Lock.attach(lock.name)
    finally:
        lock.close()


def test_corrupt_semaphore_value_above_its_bound_is_refused():
    sem = sync.BoundedSemaphore(2, name=unique_name())
    try:
        with open(SHM + sem.name, "r+b") as f:
            f.seek(64)
            f.write((3).to_bytes(4, "little"))
        with pytest.raises(CorruptSegment, match="out of range"):
            sync.BoundedSemaphore.attach(sem.name)
    finally:
        sem.close()


def test_bad_arguments():
    with pytest.raises(ValueError):
        sync.Semaphore(-1)
    with pytest.raises(ValueError):
        sync.Semaphore(sync.SEM_VALUE_MAX + 1)
    sem = sync.BoundedSemaphore(1)
    try:
        with pytest.raises(ValueError, match="too many"):
            sem.release()
        with pytest.raises(ValueError):
            sem.release(0)
    finally:
        sem.close()
    lock = sync.Lock()
    try:
        with pytest.raises(ValueError, match="unlocked"):
            lock.release()
    finally:
        lock.close()
