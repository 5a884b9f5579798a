"""Synchronisation primitives: ringipc.sync against multiprocessing's, in one run.

* uncontended: one process, acquire + release of a Lock (no other process
  ever touches it) -- ringipc's must make no system call;
* hand-off: two processes pass a baton through two semaphores (or two events),
  each release or set() ending the other side's wait, i.e. the wake-up latency
  of a round trip;
* contended: two processes each take a Lock N times around a shared counter.

Compare the groups' rows (ringipc vs mp) in the same run: the machine is shared
and noisy, so only ratios within one run mean anything.  The lock loops are
those of ``python -m ringipc bench``'s locks scenario (ringipc/bench/locks.py).
"""
import multiprocessing

import pytest

from ringipc.bench.locks import acquire_release, primitives, take_often

ctx = multiprocessing.get_context("fork")
KINDS = {kind: primitives(kind) for kind in ("ringipc", "mp")}
ROUNDS = 2000


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_uncontended_lock(benchmark, kind):
    lock = KINDS[kind].Lock()
    benchmark.group = "Lock acquire+release, uncontended (x1000)"

    benchmark(acquire_release, lock, 1000)


def _baton(ping, pong, rounds):
    for _ in range(rounds):
        ping.acquire()
        pong.release()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_semaphore_hand_off(benchmark, kind):
    ping, pong = KINDS[kind].Semaphore(0), KINDS[kind].Semaphore(0)
    benchmark.group = f"Semaphore hand-off between two processes ({ROUNDS} round trips)"

    def rounds():
        child = ctx.Process(target=_baton, args=(ping, pong, ROUNDS))
        child.start()
        for _ in range(ROUNDS):
            ping.release()
            pong.acquire()
        child.join()

    benchmark.pedantic(rounds, rounds=5, iterations=1)


def _event_baton(ping, pong, rounds):
    for _ in range(rounds):
        ping.wait()
        ping.clear()
        pong.set()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_event_hand_off(benchmark, kind):
    ping, pong = KINDS[kind].Event(), KINDS[kind].Event()
    benchmark.group = f"Event hand-off between two processes ({ROUNDS} round trips)"

    def rounds():
        child = ctx.Process(target=_event_baton, args=(ping, pong, ROUNDS))
        child.start()
        for _ in range(ROUNDS):
            ping.set()
            pong.wait()
            pong.clear()
        child.join()

    benchmark.pedantic(rounds, rounds=5, iterations=1)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_contended_lock(benchmark, kind):
    lock = KINDS[kind].Lock()
    counter = ctx.Value("q", 0, lock=False)
    benchmark.group = f"Lock taken {ROUNDS * 10} times by each of two processes"

    def contend():
        counter.value = 0
        child = ctx.Process(target=take_often, args=(lock, counter, ROUNDS * 10))
        child.start()
        take_often(lock, counter, ROUNDS * 10)
        child.join()
        assert counter.value == 2 * ROUNDS * 10

    benchmark.pedantic(contend, rounds=5, iterations=1)
