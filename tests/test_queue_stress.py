"""Many producers x many consumers across processes: exactly once, per-producer order.

Every object carries (producer, sequence, payload, crc32); sizes run from 0 B
to several times the ring's capacity so that the side-segment path interleaves
with inline messages.  Runs are bounded by message count, never by time.
"""
import multiprocessing
import zlib

import pytest

from _dropin_support import SMALL_CAPACITY, Impl, join_all

PRODUCERS = 3
CONSUMERS = 3
PER_PRODUCER = 300
SIZES = (0, 1, 100, 5000, 8200, 20000, 4 * SMALL_CAPACITY + 3)


def payload(pid, seq):
    size = SIZES[(seq + pid) % len(SIZES)]
    return bytes([(pid * 31 + seq) % 256]) * size


def producer(q, pid, batch):
    objs = []
    for seq in range(PER_PRODUCER):
        data = payload(pid, seq)
        obj = (pid, seq, data, zlib.crc32(data))
        if batch:
            objs.append(obj)
            if len(objs) == 7:
                q.put_many(objs)
                objs = []
        else:
            q.put(obj)
    if objs:
        q.put_many(objs)


def consumer(q, results, batch):
    seen, errors = [], []
    while True:
        items = q.get_many(max_messages=5, timeout=120) if batch else [q.get(timeout=120)]
        for i, item in enumerate(items):
            if item is None:
                # A batch may hold other consumers' stop markers (only markers
                # follow the first one): hand them back.
                for extra in items[i + 1:]:
                    q.put(extra)
                results.put((seen, errors))
                return
            pid, seq, data, crc = item
            if zlib.crc32(data) != crc or data != payload(pid, seq):
                errors.append(("corrupt", pid, seq))
            seen.append((pid, seq))


def run(impl, batch):
    q = impl.Queue(small=True)
    results = multiprocessing.get_context(impl.method).SimpleQueue()
    producers = [impl.Process(target=producer, args=(q, pid, batch)) for pid in range(PRODUCERS)]
    consumers = [impl.Process(target=consumer, args=(q, results, batch)) for _ in range(CONSUMERS)]
    for p in consumers + producers:
        p.start()
    join_all(producers, timeout=120)
    # Every data object is in the ring before the stop markers, so each
    # consumer stops only after the data ahead of its marker was taken.
    for _ in consumers:
        q.put(None)
    outcomes = [results.get() for _ in consumers]
    join_all(consumers, timeout=120)
    return outcomes


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("name,batch", [("multiprocessing", False), ("ringipc", False), ("ringipc", True)])
def test_many_producers_many_consumers(name, batch, method):
    if name == "multiprocessing" and method != "fork":
        pytest.skip("the reference implementation once is enough")
    outcomes = run(Impl(name, method), batch)
    everything = []
    for seen, errors in outcomes:
        assert errors == []
        for pid in range(PRODUCERS):
            seqs = [s for p, s in seen if p == pid]
            assert seqs == sorted(seqs), f"producer {pid}'s objects out of order at one consumer"
        everything += seen
    assert sorted(everything) == [(p, s) for p in range(PRODUCERS) for s in range(PER_PRODUCER)]
