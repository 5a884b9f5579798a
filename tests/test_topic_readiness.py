"""Readiness of topic handles as file descriptors (csrc/topic_bell.c on the
ring's doorbell mechanism, csrc/bell.c): Subscriber.fileno() for selectors,
multiprocessing.connection.wait() and ringipc.wait(); publishers' space bells.

What must hold: no system call for publishers while no bell is armed
(strace); a subscriber's descriptor is readable exactly while it has a
message, under every policy; a subscriber that only ever sleeps in select()
on it receives every message of a publisher in another process, exactly once
and in order (a lost ring would show as select timing out); a publisher that
only sleeps on its space bell gets through a lossless topic held by a slow
subscriber in another process; a watcher SIGKILLed with its bell armed leaves
nothing armed once its slot is recovered; a segment of the previous layout
is refused."""
import mmap
import multiprocessing
import multiprocessing.connection
import os
import queue
import select
import selectors
import shutil
import signal
import struct
import zlib

import pytest

from _strace import sends_and_shared_futexes

import ringipc
from _segment_poke import unique_name
from ringipc import CorruptSegment, RingError, Topic
from ringipc.core.doorbell import Doorbell
from ringipc.topic._topic import _debug_state

ctx = multiprocessing.get_context("fork")
TIMEOUT = 30.0
N = 20_000
REC = struct.Struct("<QI")  # sequence number, crc32 of the payload


def readable(fd, timeout=0):
    return select.select([fd], [], [], timeout)[0] == [fd]


def _syscalls(mode, count):
    return sends_and_shared_futexes("_bell_syscalls.py", "topic", mode, count)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize("mode, sends", [("none", 0), ("installed", 0), ("armed", 1)])
def test_publishers_pay_only_for_an_armed_bell(mode, sends):
    """10^4 messages: no send (and no futex call) while no bell is armed; one
    datagram for one arm, however many messages follow."""
    assert _syscalls(mode, 10_000) == (sends, 0)


@pytest.mark.parametrize("policy", ["lossless", "drop-oldest", "latest"])
def test_fileno_is_readable_exactly_while_a_message_waits(policy):
    with Topic(capacity=4096, policy=policy) as t:
        sub, pub = t.subscribe(), t.publisher()
        fd = sub.fileno()
        assert not readable(fd)
        pub.send_bytes(b"a")
        assert readable(fd)
        assert readable(fd)  # looking does not put it out
        if policy != "latest":
            pub.send_bytes(b"b")
            assert sub.recv_bytes() == b"a"
            assert readable(fd)  # "b" still waits
        pub.send_bytes(b"c")
        assert sub.recv_bytes() == b"c" if policy == "latest" else sub.recv_bytes() == b"b"
        if policy != "latest":
            buf = bytearray(8)
            assert sub.recv_bytes_into(buf) == 1 and buf[:1] == b"c"
        assert not readable(fd)
        pub.send_bytes(b"d")
        assert readable(fd)
        with sub.recv_view() as view:
            assert bytes(view) == b"d"
        assert not readable(fd)  # the released view consumed it
        assert sub.fileno() == fd
        assert _debug_state(t)["data_bells"] == 1  # armed for the next message
        sub.close()
        assert _debug_state(t)["data_bells"] == 0  # closing forgets its bell


def test_fileno_of_a_late_subscriber_with_history():
    with Topic(capacity=4096) as t:
        pub = t.publisher()
        for i in range(3):
            pub.send_bytes(bytes([i]))
        sub = t.subscribe(history=2)
        assert readable(sub.fileno())
        assert [sub.recv_bytes() for _ in range(2)] == [b"\1", b"\2"]
        assert not readable(sub.fileno())


def test_selectors_and_both_waits():
    with Topic(capacity=4096) as t:
        a, b, pub = t.subscribe(), t.subscribe(), t.publisher()
        assert ringipc.wait([a, b], 0) == []
        assert multiprocessing.connection.wait([a, b], 0) == []
        with selectors.DefaultSelector() as sel:
            sel.register(a, selectors.EVENT_READ)
            sel.register(b, selectors.EVENT_READ)
            assert sel.select(0) == []
            pub.send_bytes(b"x")
            assert {key.fileobj for key, _ in sel.select(TIMEOUT)} == {a, b}
            a.recv_bytes()
            assert [key.fileobj for key, _ in sel.select(0)] == [b]
        assert ringipc.wait([a, b], TIMEOUT) == [b]
        assert multiprocessing.connection.wait([a, b], TIMEOUT) == [b]


def test_one_watcher_per_subscriber_another_per_publisher():
    with Topic(capacity=4096) as t:
        sub, pub = t.subscribe(), t.publisher()
        sub.fileno()
        with pytest.raises(RingError, match="watched already"):
            Doorbell(sub)
        with pytest.raises(ValueError):
            Doorbell(pub, writer=False)
        with Doorbell(pub, writer=True) as first, Doorbell(pub, writer=True) as second:
            assert first.arm() and second.arm()  # free lock, no full attempt: ready


def _publish(t, n):
    pub = t.publisher()
    for i in range(n):
        payload = os.urandom(i % 200)
        pub.send_bytes(REC.pack(i, zlib.crc32(payload)) + payload)
    os._exit(0)


@pytest.mark.parametrize("capacity", [1 << 10, 1 << 20])
def test_subscriber_sleeping_only_in_select_gets_everything(capacity):
    """Lossless: the small topic makes the publisher wait for this subscriber too."""
    with Topic(capacity=capacity) as t:
        sub = t.subscribe()
        sub.spin = 0
        fd = sub.fileno()
        p = ctx.Process(target=_publish, args=(t, N))
        p.start()
        try:
            for i in range(N):
                while True:
                    try:
                        msg = sub.recv_bytes(block=False)
                        break
                    except queue.Empty:
                        assert readable(fd, TIMEOUT), f"no ring for message {i}"
                seq, crc = REC.unpack_from(msg)
                assert seq == i and zlib.crc32(msg[REC.size:]) == crc
        finally:
            p.join(TIMEOUT)
        assert p.exitcode == 0
        # A ring in flight for a message already read may have lit it; the
        # receive that finds nothing puts it out.
        with pytest.raises(queue.Empty):
            sub.recv_bytes(block=False)
        assert not readable(fd)


def _read_slowly(t, ready, n):
    sub = t.subscribe()
    ready.set()
    for i in range(n):
        assert REC.unpack_from(sub.recv_bytes(timeout=TIMEOUT))[0] == i
    os._exit(0)


def test_publisher_sleeping_only_on_its_space_bell():
    with Topic(capacity=1 << 10) as t:
        ready = ctx.Event()
        p = ctx.Process(target=_read_slowly, args=(t, ready, N))
        p.start()
        try:
            assert ready.wait(TIMEOUT)
            pub = t.publisher()
            with Doorbell(pub, writer=True) as bell:
                fulls = 0
                for i in range(N):
                    msg = REC.pack(i, 0) + b"x" * (i % 100)
                    while True:
                        try:
                            pub.send_bytes(msg, block=False)
                            break
                        except queue.Full:
                            fulls += 1
                            bell.drain()
                            if not bell.arm():
                                assert readable(bell, TIMEOUT), f"no ring for room for message {i}"
                assert fulls > 0  # the bell was what it waited on
        finally:
            p.join(TIMEOUT)
        assert p.exitcode == 0


def _arm_and_wait(t, armed):
    sub = t.subscribe()
    bell = Doorbell(sub)
    assert not bell.arm()
    armed.set()
    signal.pause()


def test_killed_watcher_leaves_nothing_armed():
    with Topic(capacity=4096) as t:
        armed = ctx.Event()
        p = ctx.Process(target=_arm_and_wait, args=(t, armed))
        p.start()
        assert armed.wait(TIMEOUT)
        assert _debug_state(t)["data_bells"] == 1
        os.kill(p.pid, signal.SIGKILL)
        p.join(TIMEOUT)
        pub = t.publisher()
        pub.send_bytes(b"x")  # takes the dead watcher's bit: one failed send
        assert _debug_state(t)["data_bells"] == 0
        assert t.recover() >= 1
        assert t.subscribers == 0
        pub.send_bytes(b"y")


def test_segment_of_the_first_layout_is_refused():
    with Topic(capacity=4096, name=unique_name()) as t:
        fd = os.open(t._debug_segment_path(), os.O_RDWR)
        try:
            raw = mmap.mmap(fd, 0)
        finally:
            os.close(fd)
        try:
            struct.pack_into("<I", raw, 8, 1)  # abi_version: topics before doorbells
            with pytest.raises(CorruptSegment, match="version"):
                Topic.attach(t.name)
            struct.pack_into("<I", raw, 8, 2)
            Topic.attach(t.name).close()
        finally:
            raw.close()
