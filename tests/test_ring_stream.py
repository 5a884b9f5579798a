"""Byte-stream mode on the ring (stream_pair): pipe semantics across chunkings,
processes, deaths and the io stack.  Bounded by bytes, never by time."""
import hashlib
import io
import multiprocessing
import os
import random
import signal
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringipc.core.stream import RingStream, stream_pair

from _stream_support import BIG_TRANSFER, read_hashed, read_in_chunks, write_random_gib

FORK = multiprocessing.get_context("fork")
SPAWN = multiprocessing.get_context("spawn")
# Reads across processes carry this timeout only so that a bug fails the
# test instead of hanging it; nothing is timed.
HANG_GUARD = 120


def guarded(stream):
    stream.timeout = HANG_GUARD
    return stream


def read_to_eof(stream, size=1 << 16):
    out = bytearray()
    while True:
        chunk = stream.read(size)
        if not chunk:
            return bytes(out)
        out += chunk


def join(proc):
    proc.join(60)
    if proc.is_alive():
        proc.kill()
        proc.join()
        pytest.fail("child did not finish")


@settings(max_examples=60, deadline=None)
@given(
    writes=st.lists(st.integers(0, 9000), max_size=16),
    reads=st.lists(st.integers(1, 9000), min_size=1, max_size=16),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_chunking_reproduces_the_concatenation(writes, reads, seed):
    # A 4 KiB ring (2 KiB records): big writes are split, records wrap, and
    # reads land on both the direct and the staged path.
    rng = random.Random(seed)
    chunks = [rng.randbytes(n) for n in writes]
    w, r = stream_pair(1 << 12)
    guarded(r)

    def produce():
        for chunk in chunks:
            assert w.write(chunk) == len(chunk)  # blocking writes take everything
        w.close()

    t = threading.Thread(target=produce)
    t.start()
    got = read_in_chunks(r, reads)
    t.join()
    r.close()
    assert got == b"".join(chunks)


def _produce_big(w, report):
    digest = write_random_gib(w, seed=99)
    w.close()
    report.send(digest)


def test_large_transfer_between_processes_hash_checked():
    w, r = stream_pair()
    report_r, report_w = FORK.Pipe(duplex=False)
    proc = FORK.Process(target=_produce_big, args=(w, report_w))
    proc.start()
    w.close()
    guarded(r)  # the child's copy is now the only writer: its close is our EOF
    total, digest = read_hashed(r, 256 << 10)
    r.close()
    join(proc)
    assert proc.exitcode == 0
    assert total == BIG_TRANSFER
    assert report_r.poll(60)
    assert digest == report_r.recv()


def _write_forever(w, started):
    pattern = bytes(range(256)) * 64  # 16 KiB, so any offset tells what must follow
    started.send(True)
    while True:
        w.write(pattern)


def test_writer_sigkilled_mid_stream_reads_as_eof():
    w, r = stream_pair(1 << 16)
    started_r, started_w = FORK.Pipe(duplex=False)
    proc = FORK.Process(target=_write_forever, args=(w, started_w))
    proc.start()
    w.close()
    guarded(r)
    assert started_r.poll(60)
    first = r.read(1000)
    assert first == bytes(range(256)) * 3 + bytes(range(232))
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(60)
    rest = read_to_eof(r)  # bounded: at most what the ring held at the kill
    r.close()
    data = first + rest
    assert len(data) <= (16 << 10) + (1 << 16)  # the record being read, plus what the ring held
    expected = (bytes(range(256)) * (len(data) // 256 + 1))[: len(data)]
    assert data == expected, "bytes committed before the kill must come out whole and in order"


def _read_one_and_close(r, ready):
    assert r.read(5) == b"first"
    r.close()
    ready.send(True)


def test_write_after_reader_closed_is_broken_pipe():
    w, r = stream_pair(1 << 16)
    ready_r, ready_w = FORK.Pipe(duplex=False)
    proc = FORK.Process(target=_read_one_and_close, args=(r, ready_w))
    proc.start()
    r.close()
    w.write(b"first")
    assert ready_r.poll(60)
    join(proc)
    with pytest.raises(BrokenPipeError):
        for _ in range(64):  # bounded: far more than the ring holds
            w.write(bytes(8192))
    w.close()


def test_reader_closed_in_this_process_stops_a_blocked_writer():
    w, r = stream_pair(1 << 12)
    r.close()
    with pytest.raises(BrokenPipeError):
        w.write(b"x")
    w.close()


def test_buffered_reader_readline_and_iteration():
    w, r = stream_pair(1 << 12)
    lines = [f"line {i} {'é' * (i % 7)}\n" for i in range(300)]
    text = "".join(lines).encode()  # several rings' worth: the writer must run beside us

    def produce():
        out = io.BufferedWriter(w, buffer_size=333)
        out.write(text)
        out.close()

    t = threading.Thread(target=produce)
    t.start()
    reader = io.TextIOWrapper(io.BufferedReader(guarded(r)), encoding="utf-8")
    assert reader.readline() == lines[0]
    assert list(reader) == lines[1:]
    assert reader.readline() == ""
    t.join()
    reader.close()


def test_non_blocking_reads_return_none_and_writes_report_progress():
    w, r = stream_pair(1 << 12)
    r.blocking = False
    w.blocking = False
    assert r.read(10) is None
    assert r.readinto(bytearray(10)) is None
    limit = w.max_message_size
    sent = [w.write(bytes(limit)) for _ in range(8)]
    assert sent[0] == limit
    assert None in sent  # the ring filled up: nothing more could be taken
    got = 0
    while (chunk := r.read(1 << 20)) is not None:
        got += len(chunk)
    assert got == sum(n for n in sent if n)
    w.close()
    assert r.read(10) == b""  # end-of-file is not "no data yet"
    r.close()


def test_read_timeout_then_data():
    w, r = stream_pair(1 << 12)
    r.timeout = 0.01
    with pytest.raises(TimeoutError):
        r.read(10)
    w.write(b"late")
    assert r.read(10) == b"late"
    w.close()
    r.close()


def _write_tagged(w, tag, count, size):
    for _ in range(count):
        w.write(bytes([tag]) * size)
    w.close()


def test_several_writer_processes_each_write_arrives_contiguous():
    w, r = stream_pair(1 << 14)
    procs = [FORK.Process(target=_write_tagged, args=(w, tag, 200, 1000)) for tag in (1, 2, 3)]
    for p in procs:
        p.start()
    w.close()
    guarded(r)
    data = read_to_eof(r, 4096)
    r.close()
    for p in procs:
        join(p)
    assert len(data) == 3 * 200 * 1000
    blocks = [data[i:i + 1000] for i in range(0, len(data), 1000)]
    assert all(b == b[:1] * 1000 for b in blocks)
    assert sorted(b[0] for b in blocks) == [1] * 200 + [2] * 200 + [3] * 200


def _spawned_writer(w, payload):
    w.write(payload)
    w.close()


def test_ends_pass_to_a_spawned_child():
    w, r = stream_pair(1 << 16)
    payload = hashlib.shake_256(b"spawn").digest(200000)  # more than the ring: split and waited for
    proc = SPAWN.Process(target=_spawned_writer, args=(w, payload))
    proc.start()
    w.close()
    guarded(r)
    assert read_to_eof(r) == payload
    r.close()
    join(proc)
    assert proc.exitcode == 0


def test_readall_and_closed_state():
    w, r = stream_pair(1 << 12)
    assert isinstance(r, RingStream) and isinstance(r, io.RawIOBase)
    assert r.readable() and not r.writable() and w.writable() and not w.readable()
    with pytest.raises(io.UnsupportedOperation):
        r.fileno()
    with pytest.raises(io.UnsupportedOperation):
        w.read(1)
    w.write(b"abc")
    w.close()
    assert r.readall() == b"abc"
    r.close()
    r.close()
    with pytest.raises(ValueError):
        r.read(1)
    with pytest.raises(ValueError):
        w.write(b"x")


def test_reader_with_buffered_bytes_refuses_to_be_pickled():
    import pickle

    w, r = stream_pair(1 << 12)
    w.write(b"0123456789")
    assert r.read(3) == b"012"
    with pytest.raises(ValueError):
        pickle.dumps(r)
    w.close()
    r.close()


def _die_mid_write(w):
    # What SIGKILL inside a copy leaves: a claimed record that is never committed.
    w._tx._debug_claim_and_hold(1000)
    os._exit(0)


def test_a_writer_killed_mid_record_does_not_stall_the_others():
    w, r = stream_pair(1 << 14)
    guarded(r)
    proc = FORK.Process(target=_die_mid_write, args=(w,))
    proc.start()
    join(proc)
    w.write(b"from the live writer")  # behind the dead claim in the ring
    assert r.read(100) == b"from the live writer"
    w.write(b"and more")
    w.close()
    assert read_to_eof(r) == b"and more"
    r.close()
