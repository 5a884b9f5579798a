"""Corrupt and foreign segments: a Topic raises CorruptSegment (or an ordinary
empty/full/timeout outcome) and never reads or writes out of bounds, crashes
or loops, whatever the shared memory holds.

The fuzzer scribbles random and cunning values over the header, the slot
table and the record metadata of a live topic, then runs every call; each
check runs in a forked worker with a deadline (tests/_forked_checks.py), so a
hang or a crash is reported with the number that replays it."""
import mmap
import os
import queue
import random
import struct

import pytest

import ringcheck
from _forked_checks import run
from _segment_poke import unique_name
from ringipc import ChannelClosed, CorruptSegment, MessageOverwritten, RingError, Topic
from ringipc.core import _segment
from ringipc.topic._topic import _debug_state

EXPECTED = (CorruptSegment, queue.Empty, queue.Full, TimeoutError, MessageOverwritten, ChannelClosed)


def _raw(topic):
    fd = os.open(topic._debug_segment_path(), os.O_RDWR)
    try:
        return mmap.mmap(fd, 0)
    finally:
        os.close(fd)


def test_foreign_and_truncated_segments():
    name = _segment.new_name()
    m = _segment.create(name, 64 << 10)
    try:
        m[:4096] = random.Random(1).randbytes(4096)
        with pytest.raises(CorruptSegment, match="magic"):
            Topic.attach(name)
    finally:
        m.close()
        _segment.unlink(name)
    with Topic(capacity=4096, name=unique_name()) as t:
        raw = _raw(t)
        try:
            header = bytes(raw[:64])
            for offset, value in [(8, 99), (12, 7), (24, 1000), (32, 12345)]:
                struct.pack_into("<I" if offset < 24 else "<Q", raw, offset, value)
                with pytest.raises(CorruptSegment):
                    Topic.attach(t.name)
                raw[:64] = header
            Topic.attach(t.name)
            os.truncate(os.path.join("/dev/shm", t.name), 8192)
            with pytest.raises(CorruptSegment):
                Topic.attach(t.name)
        finally:
            raw.close()


def test_impossible_positions_raise_on_the_data_path():
    with Topic(capacity=4096, policy="drop-oldest") as t:
        pub, sub = t.publisher(), t.subscribe(history=10)
        for i in range(5):
            pub.send_bytes(b"%d" % i)
        state = _debug_state(t)
        raw = _raw(t)
        try:
            meta = state["meta_offset"]
            struct.pack_into("<Q", raw, meta + 8, 1 << 40)  # first record's length
            with pytest.raises(CorruptSegment):
                sub.recv_bytes(block=False)
            struct.pack_into("<Q", raw, meta, 12345)  # its tag
            with pytest.raises(CorruptSegment):
                t.subscribe(history=10)
        finally:
            raw.close()


def _cunning(rng, ncells, head):
    return rng.choice([
        rng.getrandbits(64),
        rng.getrandbits(64) | (1 << 63),
        rng.randrange(0, 4 * ncells),
        head + rng.randrange(-2 * ncells, 2 * ncells),
        ((head + rng.randrange(-ncells, ncells)) << 2) | rng.randrange(4),  # a plausible tag
        ncells - rng.randrange(0, 3),
        0,
        (1 << 64) - 1,
    ]) % (1 << 64)


def exercise(n, note):
    rng = random.Random(n)
    policy = rng.choice(["lossless", "drop-oldest", "latest"])
    with Topic(capacity=rng.choice([256, 1024, 4096]), policy=policy, name=unique_name()) as t:
        pub = t.publisher()
        subs = [t.subscribe(history=rng.randrange(3)) for _ in range(rng.randrange(1, 4))]
        for i in range(rng.randrange(0, 40)):
            try:
                pub.send_bytes(b"m" * rng.randrange(0, t.max_message_size + 1), block=False)
            except queue.Full:
                break
        state = _debug_state(t)
        ncells, head = state["ncells"], state["head"]
        raw = _raw(t)
        try:
            regions = [(0, 512), (state["slots_offset"], state["slots_offset"] + 64 * 8),
                       (state["meta_offset"], state["meta_offset"] + 32 * ncells)]
            pokes = []
            for _ in range(rng.randrange(1, 6)):
                lo, hi = rng.choice(regions)
                offset = lo + 8 * rng.randrange((hi - lo) // 8)
                if offset == 0 and rng.random() < 0.9:
                    continue  # mostly keep the magic: the deeper checks are the interesting ones
                value = _cunning(rng, ncells, head)
                struct.pack_into("<Q", raw, offset, value)
                pokes.append((offset, value))
        finally:
            raw.close()
        note.state(f"policy={policy} capacity={t.capacity} head={head} pokes={pokes}")
        steps = [
            ("attach", lambda: Topic.attach(t.name).close()),
            ("subscribe", lambda: subs.append(t.subscribe(history=rng.randrange(5), timeout=0))),
            ("send", lambda: pub.send_bytes(b"x" * rng.randrange(0, t.max_message_size + 1), block=False)),
            ("recv", lambda: rng.choice(subs).recv_bytes(block=False)),
            ("recv_into", lambda: rng.choice(subs).recv_bytes_into(bytearray(t.max_message_size), block=False)),
            ("view", lambda: rng.choice(subs).recv_view(block=False).release()),
            ("poll", lambda: rng.choice(subs).poll(0)),
            ("recover", lambda: t.recover()),
            ("subscribers", lambda: t.subscribers),
        ]
        for _ in range(12):
            what, call = rng.choice(steps)
            note.step(what)
            try:
                call()
            except EXPECTED:
                pass
            except RingError as exc:
                if "more than" not in str(exc) and "release the open view" not in str(exc):
                    raise
        for s in subs:
            s.close()
        pub.close()


def test_fuzz_corrupt_topics():
    failures, finished = run(exercise, range(ringcheck.scaled(3000)), workers=2, hang_after=20.0)
    assert not failures, "\n".join(str(f) for f in failures)
    assert finished == ringcheck.scaled(3000)
