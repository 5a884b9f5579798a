"""ringipc.ProcessPoolExecutor and the executor's call queue on a ring
(ringipc/mp/executor.py).

CPython's own executor tests also run against ringipc.ProcessPoolExecutor
(test_executor_cpython.py); these are ringipc's own checks: which queues the
executor ends up with, exactly-once results across real processes, tasks that
fail to pickle, a worker SIGKILLed mid-map, install(), and the coalescing
wake-up.
"""
import concurrent.futures
import concurrent.futures.process as cfp
import gc
import multiprocessing
import os
import queue
import signal
import threading
import zlib

import pytest

import ringipc
from ringipc.mp.executor import CallQueue, _Wakeup
from ringipc.mp.simplequeue import SimpleQueue as RingSimpleQueue

START_METHODS = ("fork", "spawn", "forkserver")
TIMEOUT = 60


def checked(i):
    """A result the parent can verify: the task's number, its worker and a CRC of both."""
    body = f"{i}:{os.getpid()}".encode()
    return i, os.getpid(), zlib.crc32(body)


def kill_self_at(i, at):
    if i == at:
        os.kill(os.getpid(), signal.SIGKILL)
    return i


def identity(x):
    return x


@pytest.fixture(autouse=True)
def collect_dropped_executors():
    yield
    gc.collect()


def _verify(results, n):
    assert [r[0] for r in results] == list(range(n))  # each task once, in order
    for i, pid, crc in results:
        assert crc == zlib.crc32(f"{i}:{pid}".encode())


@pytest.mark.parametrize("method", START_METHODS)
def test_every_queue_is_a_ring_and_every_result_arrives_once(method):
    with ringipc.ProcessPoolExecutor(2, mp_context=ringipc.get_context(method)) as ex:
        assert type(ex._call_queue) is CallQueue
        assert type(ex._result_queue) is RingSimpleQueue
        assert type(ex._executor_manager_thread_wakeup) is _Wakeup
        n = 3000
        results = list(ex.map(checked, range(n), timeout=TIMEOUT))
    _verify(results, n)
    assert len({pid for _, pid, _ in results}) >= 1


def test_defaults_and_multiprocessing_contexts():
    with ringipc.ProcessPoolExecutor(1) as ex:  # ringipc's default context
        assert ex._mp_context.get_start_method() == multiprocessing.get_start_method()
        assert ex.submit(identity, 5).result(TIMEOUT) == 5
        assert type(ex._call_queue) is CallQueue
    # A multiprocessing context chooses the start method; the queues stay ringipc's.
    with ringipc.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as ex:
        assert ex._mp_context.get_start_method() == "spawn"
        assert ex.submit(identity, "x").result(TIMEOUT) == "x"
        assert type(ex._result_queue) is RingSimpleQueue


def test_spawn_when_tasks_per_child_are_limited():
    with ringipc.ProcessPoolExecutor(1, max_tasks_per_child=2) as ex:
        assert ex._mp_context.get_start_method() == "spawn"
        # One at a time: with several queued, 3.11's own executor can hang when
        # a worker retires (cpython#115634, with multiprocessing's context too).
        pids = [ex.submit(os.getpid).result(TIMEOUT) for _ in range(4)]
    assert pids[0] == pids[1] != pids[2] == pids[3]


def test_a_task_that_fails_to_pickle_fails_its_future_only():
    with ringipc.ProcessPoolExecutor(2, mp_context=ringipc.get_context("fork")) as ex:
        bad = ex.submit(identity, threading.Lock())
        good = ex.submit(identity, 7)
        with pytest.raises(TypeError, match="pickle"):
            bad.result(TIMEOUT)
        assert isinstance(bad.exception().__cause__, cfp._RemoteTraceback)
        assert good.result(TIMEOUT) == 7
        assert list(ex.map(identity, range(20), timeout=TIMEOUT)) == list(range(20))


def test_call_queue_raises_what_is_not_a_pickling_error():
    q = CallQueue(1, ctx=ringipc.get_context("fork"), pending_work_items={})
    try:
        q.put(None)
        with pytest.raises(queue.Full):  # the executor's shutdown_workers relies on it
            q.put_nowait(None)
        with pytest.raises(TypeError):
            q.put(threading.Lock())  # not a call item: nobody's future to fail
        assert q.get(timeout=TIMEOUT) is None
    finally:
        q.close()
        q.join_thread()


@pytest.mark.parametrize("method", ("fork", "spawn"))
def test_a_worker_killed_mid_map_breaks_the_pool_without_a_hang(method):
    ex = ringipc.ProcessPoolExecutor(2, mp_context=ringipc.get_context(method))
    try:
        with pytest.raises(cfp.BrokenProcessPool):
            list(ex.map(kill_self_at, range(200), [57] * 200, timeout=TIMEOUT))
        with pytest.raises(cfp.BrokenProcessPool):
            ex.submit(identity, 1)
    finally:
        ex.shutdown(wait=True)


def test_install_gives_the_standard_executor_the_ring_call_queue():
    original = cfp._SafeQueue
    try:
        ringipc.install()
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as ex:
            assert type(ex._call_queue) is CallQueue
            _verify(list(ex.map(checked, range(500), timeout=TIMEOUT)), 500)
            bad = ex.submit(identity, threading.Lock())
            with pytest.raises(TypeError):
                bad.result(TIMEOUT)
        with ringipc.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as ex:
            assert type(ex._call_queue) is CallQueue
            assert ex._call_queue.thread_wakeup is ex._executor_manager_thread_wakeup
            assert ex.submit(identity, 3).result(TIMEOUT) == 3
    finally:
        ringipc.uninstall()
    assert cfp._SafeQueue is original


def test_the_wakeup_writes_once_until_cleared():
    w = _Wakeup()
    try:
        assert not w._reader.poll()
        for _ in range(100):
            w.wakeup()
        reads = []
        recv_bytes = w._reader.recv_bytes
        w._reader.recv_bytes = lambda: reads.append(1) or recv_bytes()
        w.clear()
        assert reads == [1] and not w._reader.poll()  # the other 99 wrote nothing
        w._reader.poll = None  # nothing written since: a clear must not look at the pipe
        w.clear()
        del w._reader.poll
        w.wakeup()  # after a clear, a wake-up writes again
        assert w._reader.poll()
        w.clear()
        assert not w._reader.poll() and reads == [1, 1]
    finally:
        w.close()
