"""One body of queue tests, run against multiprocessing and ringipc alike."""
import multiprocessing
import os
import queue
import signal

import pytest

from _dropin_support import impl, join_all, proc_impl  # noqa: F401  (fixtures)


# -- child-process targets (module level so spawn/forkserver children find them)
def produce(q, pid, count, size):
    for seq in range(count):
        q.put((pid, seq, bytes([seq % 251]) * size))


def consume(q, results, count):
    results.put([q.get() for _ in range(count)])


def worker_init(q):
    global _init_queue
    _init_queue = q


def worker_put(x):
    _init_queue.put(x * x)
    return x


def put_square(q, x):
    q.put(x * x)
    return x


def do_tasks(q, n):
    for _ in range(n):
        q.get()
        q.task_done()


def produce_and_abandon(q, count, size):
    for seq in range(count):
        q.put(bytes(size))
    q.cancel_join_thread()


def put_and_wait_forever(q, ready):
    q.put("alive")
    q.close()
    q.join_thread()  # multiprocessing's put may still be in the feeder thread
    ready.put("ready")
    signal.pause()


# -- single process ------------------------------------------------------------
def test_fifo_and_nowait(impl):
    q = impl.Queue()
    for i in range(100):
        q.put(i)
    q.put_nowait("last")
    assert [q.get(timeout=10) for _ in range(100)] == list(range(100))
    assert q.get_nowait() == "last"
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get(False, 5)  # block=False ignores the timeout
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    with pytest.raises(queue.Empty):
        q.get(timeout=-1)


def test_maxsize_counts_objects(impl):
    q = impl.Queue(maxsize=3)
    assert q.empty() and not q.full() and q.qsize() == 0
    for i in range(3):
        q.put(i, timeout=10)
    assert q.full() and q.qsize() == 3
    with pytest.raises(queue.Full):
        q.put(3, False)
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.01)
    assert q.get(timeout=10) == 0
    assert q.qsize() == 2 and not q.full()
    q.put(3)
    assert [q.get(timeout=10) for _ in range(3)] == [1, 2, 3]
    assert q.qsize() == 0


def test_closed_queue(impl):
    q = impl.Queue()
    with pytest.raises(AssertionError):
        q.join_thread()  # not closed yet
    q.put(1)
    q.close()
    q.close()
    with pytest.raises(ValueError, match="is closed"):
        q.put(2)
    with pytest.raises(ValueError, match="is closed"):
        q.get()
    q.join_thread()


def test_unbounded_put_never_blocks_and_keeps_order(impl):
    # Far more than the ring (or a pipe buffer) holds, with no consumer yet.
    q = impl.Queue(small=True)
    payload = b"p" * 3000
    for i in range(200):
        q.put((i, payload))
    got = [q.get(timeout=30)[0] for _ in range(200)]
    assert got == list(range(200))
    assert q.qsize() == 0
    q.close()
    q.join_thread()


def test_put_many_overflowing_the_ring_keeps_order():
    """A batch that fills the ring part-way: the ring takes a prefix, the
    feeder the rest, and nothing is lost, repeated or reordered."""
    import ringipc

    q = ringipc.Queue(capacity=1 << 12)
    for rnd in range(4):
        objs = [(rnd, i, b"p" * (i * 7 % 300)) for i in range(400)]
        q.put_many(objs)
        got = []
        while len(got) < len(objs):
            got += q.get_many(max_messages=50, timeout=30)
        assert got == objs
    q.close()
    q.join_thread()


def test_objects_larger_than_the_ring(impl):
    q = impl.Queue(small=True)
    objs = [b"", b"x" * 8000, bytes(range(256)) * 200, list(range(20000)), "s" * 100000, None]
    for obj in objs:
        q.put(obj)
    assert [q.get(timeout=30) for _ in objs] == objs


def test_joinable_queue(impl):
    q = impl.JoinableQueue()
    with pytest.raises(ValueError):
        q.task_done()
    q.join()  # nothing outstanding
    for i in range(5):
        q.put(i)
    for _ in range(5):
        q.get(timeout=10)
        q.task_done()
    q.join()
    with pytest.raises(ValueError):
        q.task_done()


def test_simple_queue(impl):
    q = impl.SimpleQueue()
    assert q.empty()
    q.put([1, 2])
    assert not q.empty()
    assert q.get() == [1, 2]
    assert q.empty()
    q.close()
    q.close()


def test_unpicklable_object_raises_in_put_for_ringipc(impl):
    class Unpicklable:
        def __reduce__(self):
            raise TypeError("no pickling")

    q = impl.Queue()
    if impl.is_ring:
        with pytest.raises(TypeError, match="no pickling"):
            q.put(Unpicklable())
        assert q.qsize() == 0
    q.put("after")
    assert q.get(timeout=10) == "after"
    q.close()
    q.join_thread()


# -- across processes, every start method -----------------------------------------
def test_producer_and_consumer_processes(proc_impl):
    q = proc_impl.Queue(small=True)
    results = proc_impl.Queue()
    producers = [proc_impl.Process(target=produce, args=(q, pid, 50, 3000 * pid)) for pid in range(3)]
    consumer = proc_impl.Process(target=consume, args=(q, results, 150))
    for p in producers + [consumer]:
        p.start()
    got = results.get(timeout=60)
    join_all(producers + [consumer])
    assert sorted((pid, seq) for pid, seq, _ in got) == [(p, s) for p in range(3) for s in range(50)]
    for pid in range(3):
        assert [seq for p, seq, _ in got if p == pid] == list(range(50))
    assert all(data == bytes([seq % 251]) * (3000 * pid) for pid, seq, data in got)


def test_exiting_producer_waits_for_its_buffer(proc_impl):
    # 100 x 3 KB does not fit the small ring: the child must flush before it exits.
    q = proc_impl.Queue(small=True)
    p = proc_impl.Process(target=produce, args=(q, 7, 100, 3000))
    p.start()
    got = [q.get(timeout=60) for _ in range(100)]
    join_all([p])
    assert p.exitcode == 0
    assert [seq for _, seq, _ in got] == list(range(100))


def test_cancel_join_thread_lets_a_producer_exit(proc_impl):
    # Nobody reads: without cancel_join_thread() the child would wait forever.
    q = proc_impl.Queue(small=True)
    p = proc_impl.Process(target=produce_and_abandon, args=(q, 100, 3000))
    p.start()
    join_all([p])
    assert p.exitcode == 0


def test_pool_initargs(proc_impl):
    q = proc_impl.Queue()
    pool = proc_impl.ctx.Pool(2, initializer=worker_init, initargs=(q,))
    try:
        assert sorted(pool.map(worker_put, range(10))) == list(range(10))
    finally:
        # close+join, not terminate (the with-block): workers flush their puts at exit.
        pool.close()
        pool.join()
    assert sorted(q.get(timeout=30) for _ in range(10)) == [x * x for x in range(10)]


def test_joinable_queue_across_processes(proc_impl):
    q = proc_impl.JoinableQueue()
    workers = [proc_impl.Process(target=do_tasks, args=(q, 10)) for _ in range(2)]
    for w in workers:
        w.start()
    for i in range(20):
        q.put(i)
    q.join()
    join_all(workers)


def test_get_timeout_holds_when_every_producer_died(proc_impl):
    q = proc_impl.Queue()
    ready = proc_impl.Queue()
    p = proc_impl.Process(target=put_and_wait_forever, args=(q, ready))
    p.start()
    assert ready.get(timeout=60) == "ready"
    os.kill(p.pid, signal.SIGKILL)
    join_all([p])
    assert q.get(timeout=30) == "alive"
    with pytest.raises(queue.Empty):
        q.get(timeout=0.2)


_inherited = None


def read_inherited(results):
    results.put(_inherited.get(timeout=30))


def test_inherited_across_fork(impl):
    global _inherited
    impl = type(impl)(impl.name, "fork")
    _inherited = impl.Queue()
    results = impl.Queue()
    _inherited.put({"from": "parent"})
    p = impl.Process(target=read_inherited, args=(results,))
    p.start()
    assert results.get(timeout=30) == {"from": "parent"}
    join_all([p])
    _inherited = None


def test_signal_handler_runs_during_a_blocking_get(impl):
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        q = impl.Queue()
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(queue.Empty):
            q.get(timeout=0.5)  # the timer fires while this waits
        assert fired == [1]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_get_context_picks_the_start_method():
    from ringipc.mp.context import get_context
    from ringipc.mp.queues import Queue as RingQueue

    for method in ("fork", "spawn", "forkserver"):
        ctx = get_context(method)
        assert ctx.get_start_method() == method
        assert ctx.Process is multiprocessing.get_context(method).Process
        assert isinstance(ctx.Queue(), RingQueue)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_ringipc_queue_as_a_pool_task_argument(method):
    # A documented extension: multiprocessing refuses to pickle a Queue
    # outside process start; ringipc's travel by name.
    from _dropin_support import Impl

    impl = Impl("ringipc", method)
    q = impl.Queue()
    pool = impl.ctx.Pool(1)
    try:
        assert pool.apply_async(put_square, (q, 7)).get(timeout=60) == 7
    finally:
        pool.close()
        pool.join()
    assert q.get(timeout=10) == 49
