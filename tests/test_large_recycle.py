"""Received arrays' memory is parked for reuse (core/_recycle.pyx): bounded,
never shared by two live arrays, forgotten by a forked child."""
import os

import pytest

from ringipc import Pipe, Queue
from ringipc.core import _recycle

np = pytest.importorskip("numpy", reason="NumPy is optional; these cases need it (it is in the test extra)")

MIB = 1 << 20


@pytest.fixture(autouse=True)
def _nothing_parked():
    _recycle.trim()
    yield
    _recycle.trim()


def _address(arr):
    return arr.__array_interface__["data"][0]


def test_block_holds_a_copy_and_is_parked_when_collected():
    src = np.arange(2 * MIB // 8, dtype=np.uint64)
    block = _recycle.block_of(src)
    assert len(block) == src.nbytes and bytes(memoryview(block)) == src.tobytes()
    assert _recycle.parked() == (0, 0)
    del block
    count, size = _recycle.parked()
    assert count == 1 and size >= 2 * MIB


@pytest.mark.parametrize("make", ["queue", "pipe"])
def test_received_arrays_reuse_memory_but_never_share_it(make):
    if make == "queue":
        q = Queue()
        put, get = q.put, q.get
    else:
        a, b = Pipe()
        put, get = b.send, a.recv
    first_sent = np.full(3 * MIB // 8, 1.5)
    put(first_sent)
    first = get()
    assert isinstance(first.base, _recycle.Block) and first.flags.writeable
    put(np.full(3 * MIB // 8, 2.5))
    second = get()  # `first` is alive: its memory must not be handed out again
    assert _address(second) != _address(first)
    first[:] = 0
    assert (second == 2.5).all() and (first_sent == 1.5).all()
    used = _address(first)
    del first
    put(np.full(3 * MIB // 8, 3.5))
    third = get()
    assert _address(third) == used and (third == 3.5).all() and (second == 2.5).all()


def test_small_arrays_are_left_to_malloc():
    q = Queue()
    q.put(np.ones(MIB // 16))  # over the out-of-band threshold, under MIN_BLOCK
    got = q.get()
    assert not isinstance(got.base, _recycle.Block) and got.sum() == MIB // 16


def test_bounds():
    blocks = [_recycle.block_of(np.zeros(n * MIB, np.uint8)) for n in (1, 2, 3)]
    small = _recycle.block_of(np.zeros(64 << 10, np.uint8))
    del blocks, small
    count, size = _recycle.parked()
    assert count <= _recycle.CACHE_BLOCKS and size <= _recycle.CACHE_BYTES
    _recycle.trim()
    assert _recycle.parked() == (0, 0)


def test_a_parked_block_is_not_taken_for_a_much_smaller_object():
    big = _recycle.block_of(np.zeros(16 * MIB, np.uint8))
    del big
    small = _recycle.block_of(np.zeros(2 * MIB, np.uint8))
    assert _recycle.parked()[0] == 1  # the 16 MiB block stays parked
    del small


def test_forked_child_forgets_parked_blocks():
    block = _recycle.block_of(np.zeros(4 * MIB, np.uint8))
    del block
    assert _recycle.parked()[0] == 1
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.write(w, b"%d" % _recycle.parked()[0])
        os._exit(0)
    os.close(w)
    assert os.read(r, 16) == b"0"
    os.close(r)
    os.waitpid(pid, 0)
    assert _recycle.parked()[0] == 1


def test_bad_length():
    with pytest.raises(ValueError):
        _recycle.Block(-1)


def test_a_block_freed_when_the_slots_are_full_displaces_the_oldest():
    first, second = (_recycle.block_of(np.zeros(n * MIB, np.uint8)) for n in (1, 4))
    del first, second
    assert _recycle.parked()[0] == 2
    big = _recycle.block_of(np.zeros(16 * MIB, np.uint8))  # too big for either parked block
    del big
    count, size = _recycle.parked()
    assert count == 2 and size >= 20 * MIB  # the 4 MiB and the 16 MiB block; the 1 MiB one went
    again = _recycle.block_of(np.zeros(16 * MIB, np.uint8))
    assert _recycle.parked()[0] == 1  # taken back, not mapped anew
    del again
