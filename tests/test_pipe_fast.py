"""Connection's C fast path (_connection_fast.pyx): the everyday calls go
straight to the ring, every other case still takes the Python methods, and
the two agree on every message."""
import array
import multiprocessing
import os
import pickle
import struct
import zlib

import pytest

from ringipc import Pipe
from ringipc.core import large
from ringipc.mp import _connection_fast

ctx = multiprocessing.get_context("fork")


@pytest.fixture
def pipe():
    a, b = Pipe()
    yield a, b
    a.close()
    b.close()


def test_the_everyday_calls_are_the_c_methods(pipe):
    a, b = pipe
    for name in ("send_bytes", "recv_bytes", "send", "recv"):
        assert isinstance(getattr(a, name).__self__, _connection_fast.FastPath), name


def test_simplex_ends_get_only_their_direction():
    r, w = Pipe(duplex=False)
    try:
        assert "send_bytes" in w.__dict__ and "recv_bytes" not in w.__dict__
        assert "recv_bytes" in r.__dict__ and "send_bytes" not in r.__dict__
        with pytest.raises(OSError, match="read-only"):
            r.send_bytes(b"x")
        with pytest.raises(OSError, match="write-only"):
            w.recv_bytes()
    finally:
        r.close()
        w.close()


@pytest.mark.parametrize("message", [
    b"", b"\x00", b"\x00\xff", b"\xff\x00", b"\x00abc", b"x" * 64,
    large.MAGIC, large.MAGIC + b"\x00" * 40, large.SLAB_MAGIC + b"not a reference at all",
    bytearray(b"\x00\x01\x02"), memoryview(b"abcdef"), array.array("i", [1, -2, 3]),
])
def test_every_kind_of_message_arrives_as_sent(pipe, message):
    a, b = pipe
    a.send_bytes(message)
    assert b.recv_bytes() == bytes(message)
    if not isinstance(message, memoryview):  # memoryviews do not pickle
        a.send(message)
        got = b.recv()
        assert got == message and type(got) is type(message)


def test_slices_and_large_messages_take_the_python_path(pipe):
    a, b = pipe
    a.send_bytes(bytearray(b"0123456789"), 2, 3)
    assert b.recv_bytes() == b"234"
    limit = a._limit
    for n in (limit, limit + 1, 3 * limit):
        payload = bytes(range(256)) * (n // 256) + b"\x01" * (n % 256)
        a.send_bytes(payload)
        assert b.recv_bytes() == payload
        a.send(payload)
        assert b.recv() == payload


def test_a_too_long_message_ends_reading_on_both_paths(pipe):
    a, b = pipe
    a.send_bytes(b"too long")
    fast_recv = b.recv_bytes
    with pytest.raises(OSError, match="bad message length"):
        b.recv_bytes(3)
    assert not b.readable
    a.send_bytes(b"more")
    with pytest.raises(OSError, match="write-only"):
        fast_recv()
    with pytest.raises(OSError, match="write-only"):
        b.recv_bytes()


def test_closed_ends_refuse_even_through_saved_methods():
    a, b = Pipe()
    send, recv = a.send_bytes, a.recv_bytes
    a.close()
    b.close()
    for call in (lambda: send(b"x"), recv, lambda: a.send_bytes(b"x"), a.recv_bytes, a.recv, lambda: a.send(1)):
        with pytest.raises(OSError, match="handle is closed"):
            call()


def test_a_dropped_end_is_closed_at_once():
    # The fast path holds its Connection weakly: dropping the last reference
    # closes the socket, which is how the peer learns it is gone.
    a, b = Pipe()
    try:
        b.send_bytes(b"left behind")
        del b
        assert a.recv_bytes() == b"left behind"
        with pytest.raises(EOFError):
            a.recv_bytes()
        with pytest.raises(BrokenPipeError):
            a.send_bytes(b"x")
    finally:
        a.close()


PER_PRODUCER = 5000
_REC = struct.Struct("<BII")  # producer, sequence, crc32 of the sequence


def _produce(end, who):
    for seq in range(PER_PRODUCER):
        rec = _REC.pack(who, seq, zlib.crc32(seq.to_bytes(4, "little")))
        if seq % 3 == 0:
            end.send((who, seq))  # objects and byte messages interleaved on one end
        else:
            end.send_bytes(rec)
    os._exit(0)


def test_two_processes_share_one_end_exactly_once_in_order():
    a, b = Pipe()
    procs = [ctx.Process(target=_produce, args=(a, who)) for who in (0, 1)]
    try:
        for p in procs:
            p.start()
        nxt = [0, 0]
        for _ in range(2 * PER_PRODUCER):
            msg = b.recv_bytes()
            if msg[:1] == b"\x80":  # a pickle: (who, seq)
                who, seq = pickle.loads(msg)
            else:
                who, seq, crc = _REC.unpack(msg)
                assert crc == zlib.crc32(seq.to_bytes(4, "little"))
            assert seq == nxt[who], (who, seq, nxt)
            nxt[who] += 1
        assert nxt == [PER_PRODUCER, PER_PRODUCER]
        assert not b.poll(0)
    finally:
        for p in procs:
            p.join(30)
        a.close()
        b.close()
    assert [p.exitcode for p in procs] == [0, 0]
