"""The dead-claim recovery matrix: a process SIGKILLed while it holds a claim
(inside recv_view(), inside send_view(), or between claim and commit), then N
producers and N consumers that use the ring as users do - consumers block in
recv_bytes() with no timeout - for N = 1..8.  Every survivor must finish and
every message arrive exactly once; the time from the kill to the release of
the stuck position is measured, printed in the run's summary (conftest.py) and
bounded, so that "never recovers" fails instead of hanging."""
import multiprocessing
import signal
import time
import zlib

import pytest

from _proc_support import kill_now
from _soak_support import RECOVERY_TIMES, reap_all, soak_limit, stop_and_collect
from ringipc import Ring

import ringcheck

ctx = multiprocessing.get_context("fork")
CAPACITY = 1 << 14
PER_PRODUCER = 1000
BODY = b"m" * 100
MESSAGE_SIZE = ringcheck.HEADER.size + len(BODY)   # 116 B: two cells, so no wrap padding
CELLS = 2
RECOVERY_BOUND = 5.0   # seconds; the design goal is 0.5 s, this only catches "never"


def _message(producer, seq):
    return ringcheck.HEADER.pack(producer, seq, zlib.crc32(BODY)) + BODY


# -- victims: each takes its claim, says so, and waits for SIGKILL ----------
def _in_recv_view(ring, ready):
    with ring.recv_view() as view:
        ready.send(len(view))
        signal.pause()


def _in_send_view(ring, ready):
    with ring.send_view(MESSAGE_SIZE) as view:
        memoryview(view)[:MESSAGE_SIZE // 2] = b"\xee" * (MESSAGE_SIZE // 2)  # half written
        ready.send(len(view))
        signal.pause()


def _between_claim_and_commit(ring, ready):
    ready.send(ring._debug_claim_and_hold(MESSAGE_SIZE))
    signal.pause()


VICTIMS = {"recv_view": _in_recv_view, "send_view": _in_send_view, "claim_no_commit": _between_claim_and_commit}


# -- survivors ----------------------------------------------------------------
def _produce(ring, producer, conn):
    sent_at = []
    for seq in range(PER_PRODUCER):
        ring.send_bytes(_message(producer, seq))
        sent_at.append(time.monotonic())
    conn.send(sent_at)


def _consume(ring, conn):
    tally = ringcheck.Tally()
    first = None
    error = None
    try:
        while tally.add(ring.recv_bytes()):
            if first is None:
                first = time.monotonic()
    except AssertionError as exc:
        error = str(exc)
    conn.send((tally.summary(), first, error))


def _start(target, *args):
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=args + (send,))
    proc.start()
    send.close()
    return proc, receive


def _release_moment(victim, sent_at, first_received, capacity):
    """The first moment known to follow the release of the stuck position.
    A dead producer's claim sits at cons in front of every survivor's message:
    nothing is received before it is padded over.  A dead consumer's claim sits
    at release: until it moves, only the cells left behind it can be claimed,
    so the send completed next after those is later than the release."""
    if victim != "recv_view":
        return min(t for t in first_received if t is not None)
    fits = (capacity // 64 - CELLS) // CELLS
    return sorted(t for times in sent_at for t in times)[fits]


@pytest.mark.parametrize("n", range(1, 9))
@pytest.mark.parametrize("victim", sorted(VICTIMS))
def test_dead_claim_recovered(victim, n, record_property):
    limit = soak_limit(60)
    with Ring(CAPACITY, kind="mpmc") as ring:
        if victim == "recv_view":
            ring.send_bytes(_message(ringcheck.STOP - 1, 0))  # the one message the victim takes
        holder, ready = _start(VICTIMS[victim], ring)
        assert ready.poll(limit), "the victim never took its claim"
        assert ready.recv() == MESSAGE_SIZE
        kill_now(holder)
        killed_at = time.monotonic()
        consumers, producers = [], []
        try:
            consumers += [_start(_consume, ring) for _ in range(n)]
            producers += [_start(_produce, ring, p) for p in range(n)]
            stuck = reap_all([proc for proc, _ in producers], limit)
            if stuck:
                RECOVERY_TIMES.append(((victim, n), float("inf")))
            assert not stuck, f"{len(stuck)} of {n} producers still blocked after {limit} s: never recovered?"
            sent_at = [conn.recv() for _, conn in producers]
            outcomes = stop_and_collect(ring, [conn for _, conn in consumers], limit)
            assert not reap_all([proc for proc, _ in consumers], limit)
            seconds = _release_moment(victim, sent_at, [first for _, first, _ in outcomes], ring.capacity) - killed_at
        finally:  # a failure leaves consumers blocked in recv_bytes(): never leave them behind
            reap_all([proc for proc, _ in consumers + producers], 0)
    RECOVERY_TIMES.append(((victim, n), seconds))
    record_property("recovery_seconds", round(seconds, 4))
    print(f"\n{victim} {n}x{n}: released {seconds:.3f} s after the kill")
    assert not [error for _, _, error in outcomes if error]
    assert ringcheck.merge(summary for summary, _, _ in outcomes) == \
        {p: ringcheck.expected_for(PER_PRODUCER) for p in range(n)}
    assert seconds < RECOVERY_BOUND, f"recovery took {seconds:.2f} s (goal 0.5 s)"
