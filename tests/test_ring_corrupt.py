"""Broken segments written by hand: every one must raise CorruptSegment (or be
read correctly), never crash or read out of bounds.  The ASan CI job runs this."""
import os
import queue

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from _segment_poke import SHM, Poke, unique_name

import ringipc
from ringipc import CorruptSegment, Ring


@pytest.fixture(params=["spsc", "mpmc"])
def ring(request):
    with Ring(capacity=4096, kind=request.param, name=unique_name()) as r:
        yield r


@pytest.fixture
def poke(ring):
    p = Poke(ring)
    yield p
    p.close()


def _attach_fails(ring, match=None):
    with pytest.raises(CorruptSegment, match=match):
        Ring.attach(ring.name)


@pytest.mark.parametrize("field,width,value,match", [
    ("magic", 64, 0x1234, "magic"),
    ("abi_version", 32, 99, "ABI version"),
    ("kind", 32, 7, "kind"),
    ("ncells", 64, 63, "power of two"),
    ("ncells", 64, 1 << 20, None),  # a valid capacity that disagrees with the segment's size
])
def test_bad_header_field(ring, poke, field, width, value, match):
    (poke.u64 if width == 64 else poke.u32)(poke.layout[field], value)
    _attach_fails(ring, match)


def test_truncated_segment(ring):
    os.truncate(SHM + ring.name, ring._debug_layout()["segment_size"] - 4096)
    _attach_fails(ring, "size")


def test_empty_and_foreign_segments():
    name = f"ringipc-{os.getpid()}-foreign"
    try:
        with open(SHM + name, "wb") as f:
            pass
        with pytest.raises(CorruptSegment):
            Ring.attach(name)
        with open(SHM + name, "wb") as f:
            f.write(os.urandom(64 * 1024))
        with pytest.raises(CorruptSegment):
            Ring.attach(name)
        with open(SHM + name, "wb") as f:
            f.write(b"\0" * 100)
        with pytest.raises(CorruptSegment):
            Ring.attach(name)
    finally:
        os.unlink(SHM + name)


@pytest.mark.parametrize("field,value", [("cons", 5), ("release", 9)])
def test_positions_breaking_the_invariant(ring, poke, field, value):
    poke.u64(poke.layout[field], value)  # cons or release ahead of head == 0
    _attach_fails(ring, "invariant")


def test_positions_too_large_to_tag(ring, poke):
    for field in ("head", "cons", "release"):
        poke.u64(poke.layout[field], 1 << 62)
    _attach_fails(ring, "2\\^62")


def test_head_too_far_ahead_of_release(ring, poke):
    poke.u64(poke.layout["head"], 10_000)
    _attach_fails(ring, "invariant")


def test_release_ahead_of_head_detected_by_writer(ring, poke):
    for _ in range(ring.capacity // 64):  # fill so the writer must look at release
        ring.send_bytes(b"x", block=False)
    poke.u64(poke.layout["release"], poke.get64(poke.layout["head"]) + 100)
    with pytest.raises(CorruptSegment):
        ring.send_bytes(b"y", block=False)


def test_record_length_past_capacity(ring, poke):
    ring.send_bytes(b"hello")
    poke.u64(poke.meta(0) + poke.layout["meta_length"], 1 << 40)
    with pytest.raises(CorruptSegment):
        ring.recv_bytes(block=False)
    with pytest.raises(CorruptSegment):
        ring.recv_bytes_into(bytearray(10), block=False)


def test_record_running_off_the_end_of_the_data_area(ring, poke):
    last = ring.capacity // 64 - 1
    ring.send_bytes_many([b"a"] * last)
    for _ in range(last):
        ring.recv_bytes()
    ring.send_bytes(b"b")  # lands in the last cell
    poke.u64(poke.meta(last) + poke.layout["meta_length"], 200)  # would need 4 cells
    with pytest.raises(CorruptSegment):
        ring.recv_bytes(block=False)


def test_record_longer_than_claimed_region(ring, poke):
    ring.send_bytes(b"short")
    poke.u64(poke.meta(0) + poke.layout["meta_length"], 1000)  # fits the area, but past head
    with pytest.raises(CorruptSegment):
        ring.recv_bytes(block=False)


def test_bad_padding_length(ring, poke):
    ring.send_bytes(b"x")
    tag = poke.get64(poke.meta(0))
    poke.u64(poke.meta(0), (tag & ~3) | 2)  # turn it into padding of length 1: not whole cells
    with pytest.raises(CorruptSegment):
        ring.recv_bytes(block=False)


def test_recovery_refuses_to_act_on_corrupt_positions(ring, poke):
    poke.u64(poke.layout["head"], 1 << 60)  # a claimed range far larger than the ring
    assert ring.recover() == 0
    with pytest.raises(CorruptSegment):
        for _ in range(ring.capacity // 64 + 1):
            ring.send_bytes(b"x", block=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=st.lists(st.tuples(st.integers(0, 16 * 1024 - 8), st.integers(0, 2**64 - 1)), min_size=1, max_size=6),
       kind=st.sampled_from(["spsc", "mpmc"]))
def test_random_garbage_never_crashes(writes, kind):
    """Scribble over header, slots and metadata; every operation must either
    work or raise one of the documented exceptions."""
    with Ring(capacity=4096, kind=kind, name=unique_name()) as ring:
        ring.send_bytes_many([b"abc", b"", b"x" * 300])
        p = Poke(ring)
        try:
            for offset, value in writes:
                p.u64(offset - offset % 8, value)
        finally:
            p.close()
        allowed = (CorruptSegment, queue.Empty, queue.Full, EOFError, BrokenPipeError,
                   ringipc.RingError, ringipc.BufferTooShort)
        try:
            other = Ring.attach(ring.name)
        except CorruptSegment:
            other = None
        for handle in filter(None, [ring, other]):
            for op in (lambda: handle.recv_bytes(block=False),
                       lambda: handle.recv_bytes_into(bytearray(64), block=False),
                       lambda: handle.recv_bytes_many(4, block=False),
                       lambda: handle.send_bytes(b"y" * 100, block=False),
                       lambda: handle.poll(0),
                       lambda: handle.recover()):
                try:
                    op()
                except allowed:
                    pass
        if other is not None:
            other.close()
