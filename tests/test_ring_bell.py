"""Doorbells (csrc/ring_bell.c, ringipc.core.doorbell): a descriptor that
becomes readable when a ring changes, rung by the process that changed it.

What must hold: no system call for anyone while no bell is armed (strace);
an armed bell rings exactly once whoever commits, across processes, and a
consumer (or a writer waiting for room) that only ever sleeps in select() on
its bell never misses a message (a lost ring would show as a select timing
out); shutdown rings; a watcher SIGKILLed with its bell armed costs writers
one failed send and leaves nothing behind."""
import multiprocessing
import os
import queue
import select
import shutil
import signal
import struct

import pytest

from _strace import sends_and_shared_futexes

from ringipc import Ring
from ringipc.core._ring import BELL_PREFIX, _bell_sender_fd
from ringipc.core.doorbell import Doorbell

ctx = multiprocessing.get_context("fork")
TIMEOUT = 30.0
SEQ = struct.Struct("<II")  # producer, sequence number


def rings(bell, timeout=TIMEOUT):
    return select.select([bell], [], [], timeout)[0] == [bell]


# -- what it costs -------------------------------------------------------------

def _syscalls(mode, count):
    return sends_and_shared_futexes("_bell_syscalls.py", "ring", mode, count)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize("mode, sends", [("none", 0), ("installed", 0), ("armed", 1)])
def test_writers_pay_only_for_an_armed_bell(mode, sends):
    """10^4 messages: no send (and no futex call) while no bell is armed; one
    datagram for one arm, however many messages follow."""
    assert _syscalls(mode, 10_000) == (sends, 0)


# -- what it does --------------------------------------------------------------

def test_arm_reports_a_ready_ring_and_disarms():
    with Ring(4096) as ring, Doorbell(ring) as bell:
        ring.send_bytes(b"x")
        assert bell.arm()
        assert ring._debug_sleepers()["data_bells"] == 0  # no ring will come for nothing
        ring.recv_bytes()
        assert not bell.arm()
        assert ring._debug_sleepers()["data_bells"] == 1
        bell.disarm()
        assert ring._debug_sleepers()["data_bells"] == 0
        ring.send_bytes(b"y")
        assert not rings(bell, 0)


def test_two_bells_on_one_handle_both_ring():
    """A handle has one bell per direction in its slot; a second one (a
    queue's reader and an asyncio wrapper of it) gets a handle of its own."""
    with Ring(4096) as ring, Doorbell(ring) as first, Doorbell(ring) as second:
        assert not first.arm() and not second.arm()
        ring.send_bytes(b"x")
        assert rings(first, 0) and rings(second, 0)
    with Ring(4096) as ring:
        bell = Doorbell(ring)
        del bell  # dropped without close(): the handle's bell is free again
        with Doorbell(ring) as again:
            assert again._own_handle is None


def test_a_sending_socket_closed_under_the_ring_is_not_written_to():
    """The process's sending socket is cached; if the program closes its
    descriptor and the number goes to one of its own connected sockets, a
    ring must make a new socket, not write a byte into that connection."""
    import socket

    with Ring(4096) as ring, Doorbell(ring) as bell:
        assert not bell.arm()
        ring.send_bytes(b"1")  # a ring makes the sending socket if there is none
        sender = _bell_sender_fd()
        assert sender >= 0
        assert rings(bell, 0) and bell.drain() == 1
        ours, theirs = socket.socketpair()
        with ours, theirs:
            os.dup2(ours.fileno(), sender)  # the number now names the program's connection
            try:
                assert ring.recv_bytes() == b"1"
                assert not bell.arm()
                ring.send_bytes(b"2")
                assert rings(bell, 0)
                assert _bell_sender_fd() not in (-1, sender)  # a new socket
                theirs.setblocking(False)
                with pytest.raises(BlockingIOError):
                    theirs.recv(16)
            finally:
                os.close(sender)


def _send_later(ring, n):
    for i in range(n):
        ring.send_bytes(SEQ.pack(0, i))
    os._exit(0)


def test_a_commit_in_another_process_rings_once():
    with Ring(4096) as ring, Doorbell(ring) as bell:
        assert not bell.arm()
        p = ctx.Process(target=_send_later, args=(ring, 3))
        p.start()
        p.join(TIMEOUT)
        assert rings(bell)
        assert bell.drain() == 1
        assert [ring.recv_bytes(timeout=0) for _ in range(3)]


def test_shutdown_rings_the_reader():
    with Ring(4096) as ring, Doorbell(ring) as bell:
        assert not bell.arm()
        ring.shutdown("write")
        assert rings(bell, 0)
        assert bell.arm()  # EOF counts as ready
        with pytest.raises(EOFError):
            ring.recv_bytes(block=False)


def test_space_bell_rings_when_room_is_made():
    with Ring(4096) as ring, Doorbell(ring, writer=True) as bell:
        while True:
            try:
                ring.send_bytes(b"z" * 100, block=False)
            except queue.Full:
                break
        assert not bell.arm(100)
        ring.recv_bytes()
        assert rings(bell, 0)
        assert bell.arm(100)


def test_a_forked_child_cannot_use_its_parents_bell():
    with Ring(4096) as ring, Doorbell(ring) as bell:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                bell.arm()
                os.write(w, b"used")
            except OSError:
                with Doorbell(ring) as own:  # but may make its own
                    os.write(w, b"ok" if own.name != bell.name else b"same")
            os._exit(0)
        os.close(w)
        assert os.read(r, 16) == b"ok"
        os.close(r)
        os.waitpid(pid, 0)


def _arm_and_die(ring, conn):
    bell = Doorbell(ring)
    assert not bell.arm()
    conn.send(bell.name)
    os.kill(os.getpid(), signal.SIGKILL)


def _abstract_names():
    with open("/proc/net/unix") as f:
        return {line.split()[-1] for line in f if BELL_PREFIX in line}


def test_a_killed_watcher_costs_one_failed_send_and_leaves_nothing():
    with Ring(4096) as ring:
        ours, theirs = ctx.Pipe()
        p = ctx.Process(target=_arm_and_die, args=(ring, theirs))
        p.start()
        name = ours.recv()
        p.join(TIMEOUT)
        assert p.exitcode == -signal.SIGKILL
        assert f"@{BELL_PREFIX}{name:016x}" not in _abstract_names()
        assert ring._debug_sleepers()["data_bells"] == 1
        ring.send_bytes(b"a")  # rings a bell nobody holds: ECONNREFUSED, ignored
        assert ring._debug_sleepers()["data_bells"] == 0
        assert ring.recv_bytes() == b"a"


# -- exactly once, sleeping only on the bell -----------------------------------

def _produce(ring, who, n):
    for i in range(n):
        ring.send_bytes(SEQ.pack(who, i))
    os._exit(0)


@pytest.mark.parametrize("kind, producers", [("spsc", 1), ("mpmc", 3)])
def test_consumer_sleeping_on_its_bell_gets_everything_exactly_once(kind, producers):
    n = 20_000
    with Ring(2048, kind=kind) as ring, Doorbell(ring) as bell:
        procs = [ctx.Process(target=_produce, args=(ring, who, n)) for who in range(producers)]
        for p in procs:
            p.start()
        nxt = [0] * producers
        got = 0
        while got < n * producers:
            try:
                who, i = SEQ.unpack(ring.recv_bytes(block=False))
            except queue.Empty:
                bell.drain()
                if not bell.arm():
                    assert rings(bell), "a commit did not ring the armed bell"
                continue
            assert i == nxt[who]
            nxt[who] += 1
            got += 1
        for p in procs:
            p.join(TIMEOUT)
            assert p.exitcode == 0


def _consume(ring, total):
    for _ in range(total):
        ring.recv_bytes(timeout=TIMEOUT)
    os._exit(0)


def test_writer_sleeping_on_its_space_bell_never_stalls():
    n = 20_000
    with Ring(1024, kind="spsc") as ring, Doorbell(ring, writer=True) as bell:
        p = ctx.Process(target=_consume, args=(ring, n))
        p.start()
        for i in range(n):
            while True:
                try:
                    ring.send_bytes(SEQ.pack(0, i), block=False)
                    break
                except queue.Full:
                    bell.drain()
                    if not bell.arm(SEQ.size):
                        assert rings(bell), "a release did not ring the armed bell"
        p.join(TIMEOUT)
        assert p.exitcode == 0
