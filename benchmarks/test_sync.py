"""Synchronisation primitives: ringipc.sync against multiprocessing's, in one run.

* uncontended: one process, acquire + release of a Lock (no other process
  ever touches it) -- ringipc's must make no system call;
* hand-off: two processes pass a baton through two semaphores (each release
  wakes the other side, asleep), i.e. the wake-up latency of a round trip;
* contended: two processes each take a Lock N times around a shared counter.

Compare the groups' rows (ringipc vs mp) in the same run: the machine is shared
and noisy, so only ratios within one run mean anything.
"""
import multiprocessing

import pytest

from ringipc import sync

ctx = multiprocessing.get_context("fork")
KINDS = {"ringipc": sync, "mp": ctx}
ROUNDS = 2000


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_uncontended_lock(benchmark, kind):
    lock = KINDS[kind].Lock()
    benchmark.group = "Lock acquire+release, uncontended (x1000)"

    def thousand():
        for _ in range(1000):
            lock.acquire()
            lock.release()

    benchmark(thousand)


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


def _take_often(lock, counter, n):
    for _ in range(n):
        with lock:
            counter.value += 1


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_contended_lock(benchmark, kind):
    lock = KINDS[kind].Lock()
    counter = ctx.Value("q", 0, lock=False)
    benchmark.group = f"Lock taken {ROUNDS * 10} times by each of two processes"

    def contend():
        counter.value = 0
        child = ctx.Process(target=_take_often, args=(lock, counter, ROUNDS * 10))
        child.start()
        _take_often(lock, counter, ROUNDS * 10)
        child.join()
        assert counter.value == 2 * ROUNDS * 10

    benchmark.pedantic(contend, rounds=5, iterations=1)
