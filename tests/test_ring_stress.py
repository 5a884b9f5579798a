"""Many real processes, exactly-once delivery: every message is checked for
content, per-producer order, and the exact totals (no loss, no duplicate)."""
import multiprocessing

import pytest

from ringipc import Ring

import ringcheck

MAX_PAYLOAD = 3000   # with a 64 KiB ring, records cross the wrap at every offset


def _produce(ring, producer, count, batched):
    if batched:
        batch = []
        for seq in range(count):
            batch.append(ringcheck.make_message(producer, seq, MAX_PAYLOAD))
            if len(batch) == 64:
                ring.send_bytes_many(batch)
                batch.clear()
        ring.send_bytes_many(batch)
    else:
        for seq in range(count):
            ring.send_bytes(ringcheck.make_message(producer, seq, MAX_PAYLOAD))


def _consume(ring, results, batched):
    tally = ringcheck.Tally()
    try:
        while True:
            messages = ring.recv_bytes_many(32) if batched else [ring.recv_bytes()]
            stops = [m for m in messages if not tally.add(m)]
            if stops:
                # One STOP per consumer: hand back any extra a batch picked up.
                for extra in stops[1:]:
                    ring.send_bytes(extra)
                break
        results.put(("ok", tally.summary()))
    except AssertionError as exc:
        results.put(("error", str(exc)))


def run_exactly_once(kind, method, producers, consumers, per_producer):
    ctx = multiprocessing.get_context(method)
    results = ctx.SimpleQueue()
    with Ring(capacity=1 << 16, kind=kind) as ring:
        cons = [ctx.Process(target=_consume, args=(ring, results, i % 2 == 1)) for i in range(consumers)]
        prods = [ctx.Process(target=_produce, args=(ring, p, per_producer, p % 2 == 1)) for p in range(producers)]
        for proc in cons + prods:
            proc.start()
        for proc in prods:
            proc.join()
            assert proc.exitcode == 0
        for _ in range(consumers):
            ring.send_bytes(ringcheck.stop_message())
        outcomes = [results.get() for _ in range(consumers)]
        for proc in cons:
            proc.join()
    errors = [detail for status, detail in outcomes if status != "ok"]
    assert not errors, errors
    total = ringcheck.merge(detail for _, detail in outcomes)
    assert total == {p: ringcheck.expected_for(per_producer) for p in range(producers)}


@pytest.mark.parametrize("method,count", [("fork", 1_000_000), ("spawn", 200_000)])
def test_spsc_one_to_one(method, count):
    run_exactly_once("spsc", method, 1, 1, ringcheck.scaled(count))


@pytest.mark.parametrize("method,count", [("fork", 250_000), ("spawn", 50_000)])
def test_mpmc_four_by_four(method, count):
    run_exactly_once("mpmc", method, 4, 4, ringcheck.scaled(count))
