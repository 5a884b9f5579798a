"""ringipc.sync under crashes: a Lock whose holder is SIGKILLed is taken over
by the next waiter, who is told and repairs; waiters that die leave nothing
stuck; mutual exclusion and an exactly-counted shared counter survive random
kills of holders across oversubscribed processes."""
import mmap
import multiprocessing
import os
import random
import signal
import time
import warnings

import pytest

from _proc_support import kill_now, until_stopped
from _segment_poke import twin

import ringcheck
from ringipc import sync

ctx = multiprocessing.get_context("fork")


def _hold_forever(lock, ready):
    lock.acquire()
    ready.send(os.getpid())
    signal.pause()


def _start_holder(lock):
    parent_end, child_end = ctx.Pipe()
    proc = ctx.Process(target=_hold_forever, args=(lock, child_end))
    proc.start()
    assert parent_end.recv() == proc.pid
    return proc


def test_holder_killed_while_holding_is_taken_over_and_reported():
    repaired = []
    lock = sync.Lock(on_owner_death=lambda held: repaired.append(held.locked()))
    try:
        holder = _start_holder(lock)
        assert lock.holder_pid == holder.pid
        assert not lock.acquire(timeout=0.3)  # a live holder is waited for
        kill_now(holder)
        began = time.monotonic()
        assert lock.acquire(timeout=10)
        took = time.monotonic() - began
        assert lock.owner_died and repaired == [True]  # told, with the lock held
        assert lock.holder_pid == os.getpid()
        assert took < 1.0, f"took {took:.2f} s to notice the dead holder (checks every {sync.HOLDER_CHECK_EVERY} s)"
        lock.release()
        assert lock.acquire(block=False) and not lock.owner_died  # an ordinary acquisition again
        lock.release()
    finally:
        lock.close()


def test_without_a_callback_the_takeover_warns():
    lock = sync.Lock()
    try:
        kill_now(_start_holder(lock))
        with pytest.warns(sync.OwnerDiedWarning):
            assert lock.acquire(timeout=10)
        lock.release()
    finally:
        lock.close()


def test_non_blocking_acquire_takes_over_from_a_dead_holder():
    lock = sync.Lock(on_owner_death=lambda held: None)
    try:
        kill_now(_start_holder(lock))
        assert lock.acquire(block=False) and lock.owner_died
    finally:
        lock.close()


def _wait_for(primitive, ready):
    ready.send(b"waiting")
    primitive.acquire()


@pytest.mark.parametrize("kind", ["lock", "semaphore"])
def test_waiter_killed_asleep_leaves_the_primitive_working(kind):
    prim = sync.Lock() if kind == "lock" else sync.Semaphore(0)
    try:
        if kind == "lock":
            prim.acquire()
        parent_end, child_end = ctx.Pipe()
        waiter = ctx.Process(target=_wait_for, args=(prim, child_end))
        waiter.start()
        parent_end.recv()
        kill_now(waiter)
        prim.release()
        assert prim.acquire(timeout=5)
        prim.release()
        assert prim.acquire(timeout=5)
    finally:
        prim.close()


def _interrupted_acquire(lock, ready, result):
    try:
        ready.send(b"about to wait")
        lock.acquire()
        result.send("acquired")
    except KeyboardInterrupt:
        result.send("interrupted")


def test_ctrl_c_interrupts_a_blocked_acquire():
    lock = sync.Lock()
    try:
        lock.acquire()
        ready_r, ready_w = ctx.Pipe(False)
        result_r, result_w = ctx.Pipe(False)
        child = ctx.Process(target=_interrupted_acquire, args=(lock, ready_w, result_w))
        child.start()
        ready_r.recv()
        os.kill(child.pid, signal.SIGINT)
        assert result_r.poll(10), "SIGINT did not end the blocked acquire"
        assert result_r.recv() == "interrupted"
        child.join()
        lock.release()
    finally:
        lock.close()


# -- the counter soak --------------------------------------------------------------
# Shared state the lock protects, as 8-byte words: the count, a redo journal
# (valid flag, target count, who, their target done-count), an in-section
# marker, then each worker's done-count.  Every write is one aligned 8-byte
# store (a memoryview of 'q'), so a SIGKILL can land between writes, never
# inside one; the journal's body is written before its flag.
WORKERS = 8
KILLS = 20
MAX_KILLS = 5 * KILLS  # more only while too few kills caught a holder
MIN_INCREMENTS = 1000
COUNT, FLAG, TARGET, WHO, TARGET_DONE, INSIDE, DONE = range(7)


def _redo(words):
    """Finish a journalled update (idempotent): what a dead holder left half-done."""
    if words[FLAG]:
        words[DONE + words[WHO]] = words[TARGET_DONE]
        words[COUNT] = words[TARGET]
        words[FLAG] = 0
    words[INSIDE] = 0


def _increment(lock, words, who, violations):
    with lock:
        if words[INSIDE]:
            violations.value += 1  # another holder inside: mutual exclusion broken
        words[INSIDE] = 1
        count, done = words[COUNT], words[DONE + who]
        words[TARGET], words[WHO], words[TARGET_DONE] = count + 1, who, done + 1
        words[FLAG] = 1
        words[DONE + who] = done + 1
        words[COUNT] = count + 1
        words[FLAG] = 0
        words[INSIDE] = 0


def _worker(lock, mem, who, violations, repairs, stop):
    words = memoryview(mem).cast("q")

    def repair(_):
        repairs.value += 1
        _redo(words)
    lock.on_owner_death = repair
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        while not stop.value:
            _increment(lock, words, who, violations)


def test_counter_under_random_holder_kills_is_exact():
    seed = int(os.environ.get("RINGIPC_SYNC_SEED", random.SystemRandom().randrange(1 << 32)))
    print(f"\nsync kill soak seed {seed} (RINGIPC_SYNC_SEED={seed} replays the choices)")
    rng = random.Random(seed)
    mem = mmap.mmap(-1, 8 * (DONE + WORKERS + MAX_KILLS + 1))
    violations, repairs = ctx.Value("q", 0, lock=False), ctx.Value("q", 0, lock=False)
    stop = ctx.Value("b", 0, lock=False)
    lock = sync.Lock()
    procs, next_who, kills = {}, 0, {"holding": 0, "elsewhere": 0}

    def start():
        nonlocal next_who
        procs[next_who] = ctx.Process(target=_worker, args=(lock, mem, next_who, violations, repairs, stop))
        procs[next_who].start()
        next_who += 1

    try:
        for _ in range(WORKERS):
            start()
        # At least KILLS kills, and more (up to MAX_KILLS) until holders were among them.
        while sum(kills.values()) < KILLS or (kills["holding"] < 5 and sum(kills.values()) < MAX_KILLS):
            who = rng.choice(sorted(procs))
            # Half the kills aim at whoever holds the lock at each try: with
            # waiters that spin, the lock changes hands so often that a
            # process picked beforehand is rarely caught inside.
            aim = rng.random() < 0.5
            by_pid = {p.pid: w for w, p in procs.items()}
            victim = procs[who]
            holding = False
            for _ in range(200):  # freeze it until it is caught holding the lock
                holder = by_pid.get(lock.holder_pid) if aim else None
                if holder is not None:
                    who, victim = holder, procs[holder]
                os.kill(victim.pid, signal.SIGSTOP)
                if not until_stopped(victim.pid):
                    break
                if lock.holder_pid == victim.pid:
                    holding = True
                    break
                os.kill(victim.pid, signal.SIGCONT)
            kill_now(victim)
            del procs[who]
            assert victim.exitcode == -signal.SIGKILL, f"worker {who} ended with {victim.exitcode}"
            kills["holding" if holding else "elsewhere"] += 1
            start()
        stop.value = 1
        for proc in procs.values():
            proc.join(120)
            assert proc.exitcode == 0, f"a worker ended with {proc.exitcode}"
        words = memoryview(mem).cast("q")
        with lock:
            _redo(words)  # a holder killed last is repaired by nobody else
            count = words[COUNT]
            done = [words[DONE + w] for w in range(next_who)]
        words.release()
    finally:
        for proc in procs.values():
            if proc.exitcode is None:
                kill_now(proc)
        lock.close()
    print(f"kills {kills}, repairs {repairs.value}, increments {count}")
    assert violations.value == 0, "two holders were inside at once"
    assert count == sum(done), f"lost or doubled updates: count {count}, per-worker {sum(done)}"
    assert kills["holding"] >= 3, "the soak must kill holders, not only waiters"
    assert count >= MIN_INCREMENTS, "too little contended work between the kills"


def _take_units(sem, n, release_first, ready):
    for _ in range(n):
        assert sem.acquire(timeout=10)
    for _ in range(release_first):
        sem.release()
    ready.send(b"holding")
    signal.pause()


def _kill_holding(sem, n, release_first=0):
    parent_end, child_end = ctx.Pipe()
    child = ctx.Process(target=_take_units, args=(sem, n, release_first, child_end))
    child.start()
    parent_end.recv()
    kill_now(child)


@pytest.mark.parametrize("bounded", [False, True])
def test_undo_semaphore_gives_back_a_dead_holders_units(bounded):
    sem = (sync.BoundedSemaphore if bounded else sync.Semaphore)(3, undo=True)
    try:
        _kill_holding(sem, 3, release_first=1)  # holds 2 when it dies
        assert sem.get_value() == 1
        began = time.monotonic()
        assert all(sem.acquire(timeout=10) for _ in range(3))  # the 2 come back
        assert time.monotonic() - began < 2.0
        assert not sem.acquire(block=False)  # and no more than 2
        for _ in range(3):
            sem.release()
        with pytest.raises(ValueError) if bounded else _nothing():
            sem.release()
    finally:
        sem.close()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_without_undo_a_dead_holders_units_are_gone():
    sem = sync.Semaphore(2)
    try:
        _kill_holding(sem, 2)
        assert not sem.acquire(timeout=0.5)
        assert sem.get_value() == 0
    finally:
        sem.close()


def test_undo_counts_only_what_a_process_still_holds():
    """Units a process acquired and released, or released for others, are
    not given back again when it dies."""
    sem = sync.Semaphore(2, undo=True)
    try:
        _kill_holding(sem, 2, release_first=2)  # held nothing when it died
        assert sem.get_value() == 2
        assert sem.acquire(block=False) and sem.acquire(block=False)
        assert not sem.acquire(timeout=0.5)  # nothing extra appeared
        assert twin(sem).undo
    finally:
        sem.close()
