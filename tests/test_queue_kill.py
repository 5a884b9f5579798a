"""SIGKILLed producers and consumers: the survivors neither hang nor see damage.

A producer killed at an arbitrary point (inside a put, with objects buffered,
with a side segment half written) leaves a gap-free prefix of its objects;
everything the surviving producer put arrives, in order, exactly once.
"""
import os
import queue
import signal
import zlib

from _dropin_support import Impl, join_all
from test_queue_stress import payload

COUNT = 400


def endless_producer(q, pid):
    seq = 0
    while True:
        data = payload(pid, seq)
        q.put((pid, seq, data, zlib.crc32(data)))
        seq += 1


def finite_producer(q, pid):
    for seq in range(COUNT):
        data = payload(pid, seq)
        q.put((pid, seq, data, zlib.crc32(data)))


def idle_consumer(q, ready):
    ready.put("taking")
    while True:
        q.get()


def check(item):
    pid, seq, data, crc = item
    assert zlib.crc32(data) == crc and data == payload(pid, seq)
    return pid, seq


def test_killed_producer_leaves_a_prefix(tmp_path):
    impl = Impl("ringipc", "fork")
    q = impl.Queue(small=True)
    victim = impl.Process(target=endless_producer, args=(q, 0))
    survivor = impl.Process(target=finite_producer, args=(q, 1))
    victim.start()
    survivor.start()
    seen = {0: [], 1: []}
    while len(seen[1]) < COUNT:
        pid, seq = check(q.get(timeout=60))
        seen[pid].append(seq)
        if pid == 0 and seq == 50:
            os.kill(victim.pid, signal.SIGKILL)  # somewhere inside its next puts
    join_all([victim, survivor])
    # Whatever the victim committed before dying is still delivered; a blocked
    # get also recovers a claim it died holding (after the ring's 0.2 s).
    while True:
        try:
            pid, seq = check(q.get(timeout=1.0))
        except queue.Empty:
            break
        seen[pid].append(seq)
    assert seen[1] == list(range(COUNT))
    assert seen[0] == list(range(len(seen[0])))
    q.close()
    q.join_thread()


def test_killed_consumer_does_not_stall_the_others():
    impl = Impl("ringipc", "fork")
    q = impl.Queue(small=True)
    ready = impl.Queue()
    victim = impl.Process(target=idle_consumer, args=(q, ready))
    victim.start()
    assert ready.get(timeout=60) == "taking"
    first = impl.Process(target=finite_producer, args=(q, 0))
    first.start()
    got = [check(q.get(timeout=60))]
    os.kill(victim.pid, signal.SIGKILL)  # possibly in the middle of taking one
    join_all([victim])
    # The victim took some of producer 0's objects with it, as a killed pipe
    # reader would; everything producer 1 puts after its death comes here.
    second = impl.Process(target=finite_producer, args=(q, 1))
    second.start()
    while sum(1 for pid, _ in got if pid == 1) < COUNT:
        got.append(check(q.get(timeout=60)))
    join_all([second])
    assert [s for p, s in got if p == 1] == list(range(COUNT))
    zero = [s for p, s in got if p == 0]
    assert zero == sorted(set(zero))
    q.close()
    q.join_thread()
    first.terminate()  # it may wait for objects nobody will read now
    join_all([first])
