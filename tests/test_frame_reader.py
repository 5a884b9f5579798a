"""The read-ahead frame reader: frames come out whole and in order whatever the
chunking, reads that time out part-way resume, and ``fileno()`` (a doorbell)
is readable exactly while a message may be received."""
import multiprocessing
import os
import random
import select
import selectors
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _channel_support import STREAM_TRANSPORTS, channel_pair
from _channel_support import no_leftovers  # noqa: F401  (fixture)
from ringipc.channels.frame_reader import _CHUNK, _DIRECT, FrameReader
from ringipc.channels.framing import HEADER, write_all
from ringipc.channels.transports.pipe import pipe_pair

pytestmark = pytest.mark.usefixtures("no_leftovers")
streams = pytest.mark.parametrize("transport", STREAM_TRANSPORTS)

# Sizes around every threshold of the reader: empty, staged, the direct
# cut-over, the buffer size and beyond it.
_SIZES = st.one_of(
    st.integers(0, 200),
    st.sampled_from([_DIRECT - 1, _DIRECT, _DIRECT + 1, _CHUNK - 8, _CHUNK - 1, _CHUNK, _CHUNK + 9]),
    st.integers(0, 3 * _CHUNK),
)


def readable(fd):
    return bool(select.select([fd], [], [], 0)[0])


def frame(payload):
    return HEADER.pack(len(payload)) + payload


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(_SIZES, min_size=1, max_size=10),
    chunk_sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=20),
    ops=st.lists(st.tuples(st.sampled_from(["read", "into"]), st.integers(0, 4 * _CHUNK)), min_size=1, max_size=30),
    watch=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_chunking_and_any_mix_of_reads(sizes, chunk_sizes, ops, watch, seed):
    """A model check: the wire is the concatenation of frames, written in
    arbitrary pieces between reads that may time out anywhere; the messages
    must come out exactly, and the doorbell must agree with the buffer."""
    rng = random.Random(seed)
    messages = [rng.randbytes(n) for n in sizes]
    wire = b"".join(frame(m) for m in messages)
    r, w = os.pipe()
    os.set_blocking(w, False)  # a full pipe skips a write instead of blocking the test
    # Tiny pieces of a long wire would only make the example slow, not different.
    smallest_piece = len(wire) // 400
    try:
        reader = FrameReader(r)
        bell = reader.fileno() if watch else None
        received, sent, step = [], 0, 0
        while len(received) < len(messages):
            if sent < len(wire):
                piece = max(smallest_piece, chunk_sizes[step % len(chunk_sizes)])
                try:
                    sent += os.write(w, wire[sent : sent + piece])
                except BlockingIOError:
                    pass
            kind, size = ops[step % len(ops)]
            step += 1
            try:
                if kind == "read":
                    received.append(bytes(reader.read(None, 0.0)))
                else:
                    buf = bytearray(size)
                    got = reader.read_into(memoryview(buf), None, 0.0)
                    received.append(got if isinstance(got, bytes) else bytes(buf[:got]))
            except TimeoutError:
                assert sent < len(wire), "every byte was written, yet the reader waits"
                assert readable(r) is False, "the reader timed out with bytes waiting"
            if bell is not None:
                assert readable(bell) == (reader.buffered() or readable(r))
        assert received == messages
        assert not reader.buffered()
        if bell is not None:
            assert not readable(bell)
        reader.close()
    finally:
        os.close(r)
        os.close(w)


@streams
def test_fileno_stays_readable_while_read_ahead_messages_wait(transport, tmp_path):
    """Messages that one read took in together are no longer in the kernel;
    fileno() must still report each of them, and go quiet after the last."""
    with channel_pair(transport, tmp_path) as (a, b), selectors.DefaultSelector() as sel:
        for i in range(5):
            b.send_bytes(b"m%d" % i)
        assert a.recv_bytes(timeout=10) == b"m0"  # reads ahead: the others are buffered now
        sel.register(a.fileno(), selectors.EVENT_READ)  # a doorbell made after the fact
        for i in range(1, 5):
            assert sel.select(0), f"message {i} is buffered but fileno() is not readable"
            assert a.poll(0)
            assert a.recv_bytes(timeout=0) == b"m%d" % i
        assert sel.select(0) == []
        assert not a.poll(0)
        b.send_bytes(b"later")
        assert sel.select(10)
        assert a.recv_bytes(timeout=0) == b"later"
        assert sel.select(0) == []


@streams
def test_multiprocessing_wait_sees_buffered_messages(transport, tmp_path):
    from multiprocessing.connection import wait

    with channel_pair(transport, tmp_path) as (a, b):
        b.send_bytes(b"one")
        b.send_bytes(b"two")
        assert wait([a], timeout=10) == [a]
        assert a.recv_bytes() == b"one"
        assert wait([a], timeout=0) == [a]
        assert a.recv_bytes() == b"two"
        assert wait([a], timeout=0) == []


def _finish_reading(end, expected, result):
    try:
        result.put([end.recv_bytes(timeout=30) for _ in range(expected)])
    finally:
        end.close()


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_a_pipe_end_handed_to_a_child_keeps_its_read_ahead(start_method):
    """Messages the parent had already read ahead are not in the pipe any
    more; they travel with the pickled end, so the child sees all of them."""
    ctx = multiprocessing.get_context(start_method)
    reader, writer = pipe_pair(duplex=False)
    with reader, writer:
        for i in range(6):
            writer.send_bytes(b"%d" % i * (i + 1))
        assert reader.recv_bytes(timeout=10) == b"0"
        assert reader._reader.buffered()  # the rest was read ahead: the case under test
        result = ctx.Queue()
        proc = ctx.Process(target=_finish_reading, args=(reader, 5, result))
        proc.start()
        try:
            assert result.get(timeout=60) == [b"%d" % i * (i + 1) for i in range(1, 6)]
        finally:
            proc.join(60)
        assert proc.exitcode == 0


@streams
def test_direct_frame_interrupted_by_timeout_resumes(transport, tmp_path):
    """A frame too big to stage, read straight into the caller's buffer, that
    times out half-way: the next call gets it whole."""
    payload = os.urandom(3 * _CHUNK)
    data = frame(payload)
    half = len(data) // 2
    first_half_written, go_on = threading.Event(), threading.Event()
    with channel_pair(transport, tmp_path) as (a, b):
        raw = b._wfd  # frames written by hand, so the test decides where the wire pauses

        def write_in_two_halves():
            view = memoryview(data)
            write_all(raw, [view[:half]])  # blocks until the reader has drained enough
            first_half_written.set()
            go_on.wait(60)
            write_all(raw, [view[half:]])

        writer = threading.Thread(target=write_in_two_halves)
        writer.start()
        try:
            buf = bytearray(len(payload))
            timeouts_after_half = 0
            while timeouts_after_half < 2:  # the second timeout proves the first half is all taken
                with pytest.raises(TimeoutError):
                    a.recv_bytes_into(buf, timeout=0.02)
                timeouts_after_half += first_half_written.is_set()
            go_on.set()
            assert a.recv_bytes(timeout=10) == payload
        finally:
            go_on.set()
            writer.join(60)


def _receive_one(end, result):
    try:
        result.put(end.recv_bytes(timeout=60))
    finally:
        end.close()


def test_a_pipe_end_handed_over_mid_frame_carries_the_part_it_read():
    """A receive that timed out inside a big frame keeps what it read; handed
    to a child, the end carries that part along, and the child gets the
    frame whole once the rest arrives."""
    ctx = multiprocessing.get_context("spawn")
    payload = os.urandom(200 * 1024)  # a direct frame
    data = memoryview(frame(payload))
    piece = 60 * 1024  # fits an empty pipe, so writing it cannot block
    reader, writer = pipe_pair(duplex=False)
    with reader, writer:
        for start in (0, piece):  # the part read grows past a read-ahead chunk
            write_all(writer._wfd, [data[start : start + piece]])
            with pytest.raises(TimeoutError):
                reader.recv_bytes(timeout=0.05)  # takes all there is, then waits
        result = ctx.Queue()
        proc = ctx.Process(target=_receive_one, args=(reader, result))
        proc.start()
        try:
            write_all(writer._wfd, [data[2 * piece :]])
            assert result.get(timeout=60) == payload
        finally:
            proc.join(60)
        assert proc.exitcode == 0
