"""Large objects through reused slabs (core/slabs.py) and zero-copy leases
(mp/lease.py): no segment per object, bounded pools, leased memory never
overwritten, slabs of exited or killed senders never left behind."""
import hashlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading

import pytest

from ringipc import LeaseReleased, Pipe, Queue
from ringipc.core import slabs
from ringipc.core._bulk import load_u64

np = pytest.importorskip("numpy", reason="NumPy is optional; these cases need it (it is in the test extra)")

MIB = 1 << 20


def _side_segments(ring, bells=False):
    """The ring's slabs and one-off segments (and with `bells`, its pools' bells)."""
    return {n for n in os.listdir("/dev/shm")
            if n.startswith(f"{ring.name}-L") and (bells or f"-{slabs.BELL_TAG}" not in n)}


def _digest(arr):
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def test_steady_state_reuses_a_bounded_pool():
    q = Queue()
    try:
        for i in range(5):
            q.put(np.full(MIB // 8, i))
            assert q.get()[0] == i
        first = _side_segments(q._ring)
        assert 1 <= len(first) <= slabs.POOL_SLABS
        for i in range(50):
            arr = np.full(MIB // 8, i)
            q.put(arr)
            assert _digest(q.get()) == _digest(arr)
        assert _side_segments(q._ring) == first, "the same slabs, no segment per object"
    finally:
        q.close()
        q.join_thread()
    assert not _side_segments(q._ring, bells=True)


_STRACE_CHILD = """
import sys, numpy as np, ringipc
q = ringipc.Queue()
arr = np.ones(1 << 17)  # 1 MiB
for _ in range(3):
    q.put(arr); q.get()
for _ in range(int(sys.argv[1])):
    q.put(arr); q.get()
q.close()
"""


def _syscalls(tmp_path, count):
    out = tmp_path / f"trace{count}"
    calls = "mmap,munmap,ftruncate,fallocate,unlink,openat,memfd_create"
    subprocess.run(["strace", "-f", "-qq", "-e", f"trace={calls}", "-o", str(out),
                    sys.executable, "-c", _STRACE_CHILD, str(count)], check=True, timeout=300,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    found = {}
    for line in out.read_text().splitlines():
        name = line.split(None, 1)[1].split("(", 1)[0] if " " in line else ""
        found[name] = found.get(name, 0) + 1
    return found


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_no_segment_system_calls_per_object(tmp_path):
    """1,000 puts and gets of 1 MiB arrays make no more shm_open (openat of
    /dev/shm), ftruncate, unlink or mmap calls than none at all."""
    base, many = _syscalls(tmp_path, 0), _syscalls(tmp_path, 1000)
    for call in ("mmap", "munmap", "ftruncate", "fallocate", "unlink", "openat", "memfd_create"):
        assert many.get(call, 0) - base.get(call, 0) <= 5, (call, base, many)


def test_lease_looks_into_shared_memory_and_is_never_overwritten():
    q = Queue()
    try:
        arr = np.arange(2 * MIB // 8, dtype=np.int64)
        q.put(arr)
        lease = q.get_lease(timeout=10)
        held = lease.obj
        assert not held.flags.owndata and held.flags.writeable
        assert held.ctypes.data % 64 == 0  # as aligned as its sender's
        digest = _digest(arr)
        for i in range(3 * slabs.POOL_SLABS):  # traffic goes on around the held slab
            other = np.full(2 * MIB // 8, -i, dtype=np.int64)
            q.put(other)
            assert _digest(q.get(timeout=10)) == _digest(other)
        assert _digest(held) == digest
        del held
        with lease as again:
            assert _digest(again) == digest
        with pytest.raises(LeaseReleased):
            lease.obj
        lease.release()  # idempotent
    finally:
        q.close()
        q.join_thread()


def test_senders_never_write_into_leased_slabs(monkeypatch):
    """Every slab leased: a non-blocking put uses a one-off segment instead; a
    blocking one waits, and takes the slab released meanwhile."""
    monkeypatch.setattr(slabs, "GIVE_UP", 60.0)  # the waiting put must get the released slab
    q = Queue()
    leases = []
    try:
        for i in range(slabs.POOL_SLABS):
            q.put(np.full(MIB // 8, i))
            leases.append(q.get_lease(timeout=10))
        pool = _side_segments(q._ring)
        assert len(pool) == slabs.POOL_SLABS
        q.put(np.full(MIB // 8, 99), block=False)
        assert len(_side_segments(q._ring) - pool) == 1, "a one-off segment, the leased slabs untouched"
        assert q.get(timeout=10)[0] == 99
        assert _side_segments(q._ring) == pool  # the one-off is gone with its receipt
        putter = threading.Thread(target=q.put, args=(np.full(MIB // 8, 7),))
        putter.start()
        bell = slabs._pools[q._ring.name].bell
        while not load_u64(bell, 64) & 0xFFFFFFFF:  # until the putter is counted asleep
            assert putter.is_alive()
            os.sched_yield()
        leases.pop(0).release()
        putter.join(60)
        assert not putter.is_alive()
        assert slabs._pools[q._ring.name].woken >= 1, "woken by the release, not by polling"
        assert _side_segments(q._ring) == pool, "the released slab, no new segment"
        assert q.get(timeout=10)[0] == 7
        for i, lease in enumerate(leases, 1):
            assert (lease.obj == i).all()
    finally:
        for lease in leases:
            lease.release()
        q.close()
        q.join_thread()


def test_pipe_lease_and_bytes():
    a, b = Pipe()
    try:
        payload = os.urandom(3 * MIB)
        b.send(payload)
        with a.recv_lease() as view:
            assert bytes(view) == payload
        b.send({"small": 1})
        with a.recv_lease() as small:
            assert small == {"small": 1}
    finally:
        a.close()
        b.close()


def _send_and_exit(q, count):
    for i in range(count):
        q.put(np.full(MIB // 8, i))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_objects_of_an_exited_sender_arrive_and_its_slabs_go(method):
    """A sender that exits with objects in flight: they arrive whole, and its
    slabs (orphans now) are removed by whoever reads them."""
    ctx = multiprocessing.get_context(method)
    q = Queue()
    try:
        proc = ctx.Process(target=_send_and_exit, args=(q, 6))
        proc.start()
        proc.join(60)
        assert proc.exitcode == 0
        for i in range(6):
            assert (q.get(timeout=10) == i).all()
        assert not _side_segments(q._ring)
    finally:
        q.close()
        q.join_thread()


def _lease_all_and_hang(q, ready, count):
    leases = [q.get_lease(timeout=60) for _ in range(count)]
    ready.put(len(leases))
    threading.Event().wait()  # holds them until SIGKILLed


def test_a_consumer_killed_holding_slabs_never_wedges_its_sender(monkeypatch):
    """Every slab of the sender's pool leased by a consumer that is then
    SIGKILLed: the sender carries on through one-off segments, every object
    arrives whole, and the creator's sweep removes the stranded slabs."""
    from ringipc.core import large
    monkeypatch.setattr(slabs, "GIVE_UP", 0.2)
    ctx = multiprocessing.get_context("fork")
    q, ready = Queue(), ctx.SimpleQueue()
    try:
        for i in range(slabs.POOL_SLABS):
            q.put(np.full(MIB // 8, i))
        proc = ctx.Process(target=_lease_all_and_hang, args=(q, ready, slabs.POOL_SLABS))
        proc.start()
        assert ready.get() == slabs.POOL_SLABS
        proc.kill()
        proc.join()
        for i in range(3):
            arr = np.full(MIB // 8, 100 + i)
            q.put(arr)  # blocking: waits GIVE_UP for a slab, then a one-off segment
            assert _digest(q.get(timeout=10)) == _digest(arr)
    finally:
        q.close()
        q.join_thread()
        ready.close()
    large.sweep(q._ring.name, only_dead=True, mine=True)  # what the creator does at its exit
    assert not _side_segments(q._ring)
