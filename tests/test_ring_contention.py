"""Oversubscribed MPMC stress: 8 producers and 8 consumers (16 processes on a
machine that may have 2 cores) on a ring a few records wide and on a default
one, at least two million messages each.  Every message is checked exactly once by
(producer, seq, checksum), and a single CorruptSegment anywhere fails the test:
a consumer counts it (it read nothing, so it may go on) and reports the count,
it never swallows it.  Half the consumers block in plain recv_bytes(), half
loop on recv_bytes(timeout=0.5), the two ways users wait; two producers send
in batches (send_bytes_many), the others one message per call."""
import multiprocessing
import queue
import time

from _soak_support import reap_all, soak_limit, stop_and_collect
from ringipc import CorruptSegment, Ring

import ringcheck

ctx = multiprocessing.get_context("fork")
PRODUCERS = CONSUMERS = 8
BATCHED = 2            # producers using send_bytes_many (one claim per run of messages); the rest send one by one


def _send_all(ring, messages, batch):
    """Sends every message; returns how many CorruptSegment it met (one at a
    time; in a batch, whose progress it leaves unknown, it ends the producer)."""
    corrupt = 0
    if batch > 1:
        for i in range(0, len(messages), batch):
            ring.send_bytes_many(messages[i:i + batch])
        return 0
    for message in messages:
        while True:
            try:
                ring.send_bytes(message)
                break
            except CorruptSegment:
                corrupt += 1  # nothing of the failed message was sent
    return corrupt


def _produce(ring, producer, count, max_payload, batch, conn):
    corrupt = 0
    messages = []
    for seq in range(count):
        messages.append(ringcheck.make_message(producer, seq, max_payload))
        if len(messages) == 4096:
            corrupt += _send_all(ring, messages, batch)
            messages.clear()
    corrupt += _send_all(ring, messages, batch)
    conn.send(corrupt)


def _consume(ring, timeout, conn):
    tally = ringcheck.Tally()
    corrupt = empties = 0
    error = None
    try:
        while True:
            try:
                message = ring.recv_bytes() if timeout is None else ring.recv_bytes(timeout=timeout)
            except queue.Empty:
                empties += 1
                continue
            except CorruptSegment:
                corrupt += 1  # "nothing was read": counted, the test fails, the count goes on
                continue
            if not tally.add(message):
                break
    except AssertionError as exc:  # lost order or a bad checksum
        error = str(exc)
    conn.send((tally.summary(), corrupt, empties, error))


def _producer_plan(total, max_payloads):
    per_producer = ringcheck.scaled(-(-total // PRODUCERS))
    return [(p, per_producer, max_payloads[p % len(max_payloads)], 64 if p < BATCHED else 1)
            for p in range(PRODUCERS)]


def run_contention(capacity, total, max_payloads):
    limit = soak_limit(240)
    plan = _producer_plan(total, max_payloads)
    started = time.monotonic()
    with Ring(capacity, kind="mpmc") as ring:
        cons_pipes = [ctx.Pipe(duplex=False) for _ in range(CONSUMERS)]
        prod_pipes = [ctx.Pipe(duplex=False) for _ in range(PRODUCERS)]
        consumers = [ctx.Process(target=_consume, args=(ring, None if i % 2 else 0.5, w))
                     for i, (_, w) in enumerate(cons_pipes)]
        producers = [ctx.Process(target=_produce, args=(ring, *args, w)) for args, (_, w) in zip(plan, prod_pipes)]
        for proc in consumers + producers:
            proc.start()
        try:
            stuck = reap_all(producers, limit)
            assert not stuck, f"{len(stuck)} producers still sending after {limit} s"
            assert [p.exitcode for p in producers] == [0] * PRODUCERS
            producer_corrupt = [r.recv() for r, _ in prod_pipes]
            outcomes = stop_and_collect(ring, [r for r, _ in cons_pipes], limit)
            stuck = reap_all(consumers, limit)
            assert not stuck
        finally:  # a failure leaves consumers blocked: never leave them behind
            reap_all(consumers + producers, 0)
    elapsed = time.monotonic() - started
    messages = sum(count for _, count, _, _ in plan)
    corrupt = [c for _, c, _, _ in outcomes]
    print(f"\n{messages} messages, {PRODUCERS}x{CONSUMERS} on {capacity} B: {elapsed:.1f} s, "
          f"{messages / elapsed:,.0f} msg/s; consumer timeouts {[e for _, _, e, _ in outcomes]}; "
          f"CorruptSegment: consumers {corrupt}, producers {producer_corrupt}")
    errors = [error for _, _, _, error in outcomes if error]
    assert not errors, errors
    assert sum(corrupt) + sum(producer_corrupt) == 0, \
        f"CorruptSegment on a sound ring: consumers {corrupt}, producers {producer_corrupt}"
    total = ringcheck.merge(summary for summary, _, _, _ in outcomes)
    assert total == {p: ringcheck.expected_for(count) for p, count, _, _ in plan}


def test_tiny_ring_eight_by_eight():
    # 256 B = four cells; max message 128 B.  The 16-byte check header plus
    # 0..112 payload bytes: one- and two-cell records, wrap padding every lap.
    # Twice the two million: the reader race this guards against showed about
    # once per 2M messages here (caught in 5 of 9 runs of 2M before its fix).
    run_contention(256, 4_000_000, [112])


def test_default_ring_eight_by_eight():
    # 1 MiB: records of 16 B .. 32 KiB, wrapping at every offset.
    run_contention(1 << 20, 2_000_000, [48, 1000, 240, 4000, 112, 16000, 500, 32000])
