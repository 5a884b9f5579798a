"""Hundreds of producers SIGKILLed at random moments while they put large
objects (frames in the ring, slabs, one-off segments when the pool is busy,
raw bytes): the consumer gets, from each producer, exactly the objects it
committed - a gapless prefix of its sequence, each whole (hash checked), none
twice - and nothing is left in /dev/shm once the queue is closed (conftest)."""
import hashlib
import multiprocessing
import os
import queue
import random
import signal

import pytest

from ringipc import Queue

np = pytest.importorskip("numpy", reason="NumPy is optional; these cases need it (it is in the test extra)")

KILLS = 1000
SIZES = (200_000, 2 << 20, 9 << 20)  # a frame in the ring, a slab, more than one slab's worth


def _payload(incarnation, seq):
    size = SIZES[(incarnation + seq) % len(SIZES)]
    if seq % 4 == 3:
        return bytes([seq % 251]) * size
    return np.full(size // 8, incarnation * 1_000_003 + seq, dtype=np.int64)


def _produce_forever(q, incarnation):
    seq = 0
    while True:
        payload = _payload(incarnation, seq)
        q.put((incarnation, seq, hashlib.sha256(payload).hexdigest(), payload))
        seq += 1


def _check(item, delivered):
    incarnation, seq, digest, payload = item
    assert hashlib.sha256(payload).hexdigest() == digest, f"producer {incarnation} object {seq} is torn"
    assert seq == delivered.get(incarnation, 0), f"producer {incarnation}: got {seq} after {delivered.get(incarnation)}"
    delivered[incarnation] = seq + 1


def test_producers_killed_at_random_moments_deliver_whole_committed_prefixes():
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(2026)
    delivered = {}
    q = Queue()
    try:
        for incarnation in range(KILLS):
            proc = ctx.Process(target=_produce_forever, args=(q, incarnation))
            proc.start()
            for _ in range(rng.randrange(0, 3)):
                _check(q.get(timeout=60), delivered)
            # A random moment: the producer is somewhere in a put (pickling,
            # copying into a slab, claiming, committing) or waiting for room.
            for _ in range(rng.randrange(0, 40_000)):
                pass
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
            while True:  # what it committed before dying: all there, with nothing behind it
                try:
                    _check(q.get(block=False), delivered)
                except queue.Empty:
                    break
    finally:
        q.close()
        q.join_thread()
    # The kills landed at different points: some producers had committed nothing.
    assert sum(delivered.values()) >= KILLS // 2 and len(delivered) < KILLS
