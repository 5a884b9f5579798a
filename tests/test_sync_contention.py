"""Lock hand-offs between processes that contend all the time, where waiters
mostly take the lock while spinning (csrc/sync.c, rip_lock_spin) rather than
after a futex sleep: on two CPUs (the spin pays) and with both processes on
one CPU (it does not, and the budget must fall without losing anything).
Semaphore and Event ping-pong the same way, each side checking the turns.

Each taker logs (its tag, its sequence number) at the counter's position
under the lock, so a lost update, a double entry or two holders at once show
as a gap, a repeat or a reordering in some taker's sequence."""
import multiprocessing
import os

import pytest

from ringipc import sync

N = 5000  # acquisitions per process: the stress is bounded by count
ctx = multiprocessing.get_context("fork")
_ALL_CPUS = os.sched_getaffinity(0)


def _take(lock, counter, log, tag, cpu, start):
    os.sched_setaffinity(0, {cpu})
    start.wait(30)
    for seq in range(N):
        with lock:
            i = counter.value  # a read-modify-write that only the lock makes safe
            log[i] = tag * N + seq
            counter.value = i + 1


def _cpus(where):
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[-1]) if where == "two CPUs" else (cpus[0], cpus[0])


@pytest.mark.parametrize("where", ["two CPUs", "one CPU"])
def test_contended_hand_offs_lose_nothing(where):
    lock = sync.Lock()
    counter = ctx.Value("q", 0, lock=False)
    log = ctx.Array("q", 2 * N, lock=False)
    start = ctx.Barrier(2)
    try:
        takers = [ctx.Process(target=_take, args=(lock, counter, log, tag, cpu, start))
                  for tag, cpu in enumerate(_cpus(where))]
        for p in takers:
            p.start()
        for p in takers:
            p.join(60)
        assert [p.exitcode for p in takers] == [0, 0]
        assert counter.value == 2 * N
        for tag in (0, 1):
            assert [v % N for v in log if v // N == tag] == list(range(N)), f"taker {tag}'s entries"
        assert not lock.locked()
    finally:
        lock.close()


def _hold_then_release(lock, held, go):
    lock.acquire()
    held.set()
    go.wait(30)
    lock.release()


def test_a_waiter_sleeps_once_the_spin_fails_and_takes_the_lock_when_released():
    # The holder keeps the lock far longer than any spin: the waiter must
    # fall back to sleeping and still be woken by the release.
    lock, held, go = sync.Lock(), sync.Event(), sync.Event()
    try:
        holder = ctx.Process(target=_hold_then_release, args=(lock, held, go))
        holder.start()
        assert held.wait(30)
        assert not lock.acquire(timeout=0.2)  # spun, slept, timed out: held by a live process
        go.set()
        assert lock.acquire(timeout=30) and not lock.owner_died
        lock.release()
        holder.join(30)
        assert holder.exitcode == 0
    finally:
        for prim in (lock, held, go):
            prim.close()


ROUNDS = 2000  # round trips


def _answer(kind, ping, pong, turn, cpu, start):
    os.sched_setaffinity(0, {cpu})
    start.wait(30)
    for i in range(ROUNDS):
        if kind == "Semaphore":
            assert ping.acquire(timeout=30)
        else:
            assert ping.wait(30)
            ping.clear()
        assert turn.value == 2 * i + 1, (turn.value, i)  # the other side's step, exactly once
        turn.value += 1
        pong.release() if kind == "Semaphore" else pong.set()


@pytest.mark.parametrize("where", ["two CPUs", "one CPU"])
@pytest.mark.parametrize("kind", ["Semaphore", "Event"])
def test_ping_pong_between_processes_keeps_turns(kind, where):
    # Each side waits (spinning, then asleep) for the other's release or
    # set(): a wait that returned without one, or missed one, breaks the turns.
    ping, pong = (sync.Semaphore(0), sync.Semaphore(0)) if kind == "Semaphore" else (sync.Event(), sync.Event())
    turn = ctx.Value("q", 0, lock=False)
    start = ctx.Barrier(2)
    mine, theirs = _cpus(where)
    try:
        other = ctx.Process(target=_answer, args=(kind, ping, pong, turn, theirs, start))
        other.start()
        os.sched_setaffinity(0, {mine})
        try:
            start.wait(30)
            for i in range(ROUNDS):
                assert turn.value == 2 * i
                turn.value += 1
                if kind == "Semaphore":
                    ping.release()
                    assert pong.acquire(timeout=30)
                else:
                    ping.set()
                    assert pong.wait(30)
                    pong.clear()
        finally:
            os.sched_setaffinity(0, _ALL_CPUS)
            other.join(60)
        assert other.exitcode == 0 and turn.value == 2 * ROUNDS
    finally:
        ping.close()
        pong.close()
