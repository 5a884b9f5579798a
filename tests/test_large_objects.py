"""Large objects through the drop-ins: buffers travel out of band (pickle
protocol 5, ringipc.oob), into the ring or a side segment, and come back
whole - every kind of buffer, every drop-in, several producers under fork and
spawn, content checked by hash."""
import hashlib
import multiprocessing
import queue
import random

import pytest

from ringipc import JoinableQueue, Pipe, Queue, SimpleQueue

np = pytest.importorskip("numpy", reason="NumPy is optional; these cases need it (it is in the test extra)")


def _objects():
    """(name, object): each drop-in must carry all of them intact."""
    return [
        ("bytes 1 MiB", bytes(range(256)) * 4096),
        ("bytearray", bytearray(b"\x07" * 300_000)),
        ("float64", np.linspace(0, 1, 1 << 17)),
        ("Fortran int16", np.asfortranarray(np.arange(1 << 18, dtype=np.int16).reshape(512, -1))),
        ("strided", np.arange(1 << 18, dtype=np.int32)[::2]),
        ("0-d", np.array(7, dtype=np.uint8)),
        ("empty", np.empty((0, 3))),
        ("bigger than the ring", np.ones(3 << 20, dtype=np.uint8)),  # 3 MiB: a side segment
        ("mixed", {"meta": {"id": 1}, "frames": [np.full(100_000, i, np.uint16) for i in range(5)], "note": "n"}),
    ]


def _digest(obj):
    if isinstance(obj, np.ndarray):
        return ("array", obj.dtype.str, obj.shape, hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest())
    if isinstance(obj, (bytes, bytearray)):
        return (type(obj).__name__, hashlib.sha256(obj).hexdigest())
    if isinstance(obj, dict):
        return {k: _digest(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_digest(v) for v in obj]
    return obj


def _pipe_pair():
    a, b = Pipe()
    return a.send, b.recv, (a, b)


def _queue_pair(cls):
    def make():
        q = cls()
        return q.put, q.get, (q,)
    return make


PAIRS = {"Queue": _queue_pair(Queue), "JoinableQueue": _queue_pair(JoinableQueue),
         "SimpleQueue": _queue_pair(SimpleQueue), "Pipe": _pipe_pair}


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_every_buffer_kind_round_trips(kind):
    put, get, ends = PAIRS[kind]()
    try:
        for name, obj in _objects():
            put(obj)
            got = get()
            assert _digest(got) == _digest(obj), name
            if isinstance(got, np.ndarray) and got.size:
                assert got.flags.writeable, name  # copied out: the receiver owns it
    finally:
        for end in ends:
            end.close()


def _produce(q, producer, count):
    for seq in range(count):
        payload = np.full(50_000 + 1000 * producer, seq, dtype=np.int64)
        q.put((producer, seq, hashlib.sha256(payload.tobytes()).hexdigest(), payload))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_several_producers_exactly_once(method):
    ctx = multiprocessing.get_context(method)
    producers, count = 3, 40
    q = Queue()
    procs = [ctx.Process(target=_produce, args=(q, p, count)) for p in range(producers)]
    for proc in procs:
        proc.start()
    seen, last = {}, {}
    for _ in range(producers * count):
        producer, seq, digest, payload = q.get(timeout=60)
        assert hashlib.sha256(payload.tobytes()).hexdigest() == digest
        assert (producer, seq) not in seen
        assert seq > last.get(producer, -1), "one producer's objects arrive in order"
        seen[producer, seq] = last[producer] = seq
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert sorted(seen) == [(p, s) for p in range(producers) for s in range(count)]
    q.close()


def _produce_forever(q):
    seq = 0
    while True:
        size = (2 << 20) if seq % 3 == 0 else 200_000  # side segments and in-ring frames
        payload = np.full(size // 8, seq, dtype=np.int64)
        q.put((seq, hashlib.sha256(payload.tobytes()).hexdigest(), payload))
        seq += 1


def test_producers_killed_mid_object_leave_whole_objects_and_no_segments():
    """A producer SIGKILLed while writing a large object: the consumer gets
    every object that was committed and never part of one; the conftest check
    then finds no segment left once the queue is closed."""
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(11)
    q = Queue()
    got = 0
    try:
        for _ in range(6):
            proc = ctx.Process(target=_produce_forever, args=(q,))
            proc.start()
            for _ in range(rng.randrange(1, 6)):  # let it get some way, then kill it mid-stream
                seq, digest, payload = q.get(timeout=60)
                assert hashlib.sha256(payload.tobytes()).hexdigest() == digest
                got += 1
            proc.kill()
            proc.join()
            while True:  # what it committed before dying, whole
                try:
                    seq, digest, payload = q.get(timeout=1.0)
                except queue.Empty:
                    break
                assert hashlib.sha256(payload.tobytes()).hexdigest() == digest
                got += 1
    finally:
        q.close()
        q.join_thread()
    assert got >= 6
