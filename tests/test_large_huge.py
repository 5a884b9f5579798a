"""An array over 2 GiB through Queue and Pipe: lengths and copies are 64-bit
end to end (a 32-bit length, or a single read/write capped at 2 GiB, would
wrap or stop short)."""
import os
import shutil

import pytest

from ringipc import Pipe, Queue

np = pytest.importorskip("numpy", reason="NumPy is optional; these cases need it (it is in the test extra)")

HUGE = (2 << 30) + (1 << 20) + 8  # just past 2 GiB, and not a multiple of any buffer size
UNIT = 1 << 20


def _room():
    """Why the machine cannot take it, or None.  The sender's array, its slab
    (in /dev/shm, RAM too) and the received copy are each HUGE bytes."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if memory < 4 * HUGE:  # three copies of HUGE and room to spare
        return f"needs about {4 * HUGE >> 30} GiB of RAM, the machine has {memory >> 30}"
    try:
        shm = shutil.disk_usage("/dev/shm").free
    except OSError:
        shm = 0
    if shm < 2 * HUGE:
        return f"needs {2 * HUGE >> 30} GiB free in /dev/shm, it has {shm >> 30}"
    return None


@pytest.fixture(scope="module")
def huge_array():
    reason = _room()
    if reason:
        pytest.skip(reason)
    # A random 1 MiB unit repeated: cheap to build, and a shifted or dropped
    # range cannot compare equal (the unit has no period of its own).
    unit = np.frombuffer(os.urandom(UNIT), np.uint8)
    arr = np.empty(HUGE, np.uint8)
    whole = HUGE // UNIT * UNIT
    arr[:whole].reshape(-1, UNIT)[:] = unit
    arr[whole:] = unit[:HUGE - whole]
    return arr


def _check(got, sent):
    assert got.dtype == sent.dtype and got.shape == sent.shape
    step = 64 << 20  # in pieces: a whole-array comparison would allocate a 2 GiB temporary
    for start in range(0, HUGE, step):
        assert np.array_equal(got[start:start + step], sent[start:start + step]), f"differs in [{start}, +{step})"


def test_queue_round_trip_over_2_gib(huge_array):
    q = Queue()
    q.put(huge_array)
    got = q.get(timeout=120)
    _check(got, huge_array)
    del got
    q.close()
    q.join_thread()


def test_pipe_round_trip_over_2_gib(huge_array):
    a, b = Pipe()
    b.send(huge_array)
    got = a.recv()
    _check(got, huge_array)
    del got
    a.close()
    b.close()
