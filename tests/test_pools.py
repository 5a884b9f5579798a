"""The standard library's process pools on ringipc's context, queue readiness
as a descriptor, ringipc.install(), and a third-party pool library.

CPython's own pool and executor tests run in test_pool_cpython.py and
test_executor_cpython.py; these are ringipc's own checks.
"""
import concurrent.futures
import gc
import json
import multiprocessing
import multiprocessing.connection
import multiprocessing.queues
import os
import select
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ringipc
from ringipc.mp.executor import CallQueue
from ringipc.mp.queues import JoinableQueue, Queue, SimpleQueue
from ringipc.mp.simplequeue import SimpleQueue as RingSimpleQueue

START_METHODS = ("fork", "spawn", "forkserver")
TIMEOUT = 60


def square(x):
    return x * x


def put_one(q, obj):
    q.put(obj)


@pytest.fixture(autouse=True)
def collect_dropped_pools():
    # A Pool or executor sits in reference cycles: its queues (and their
    # rings' names) go when the cycle collector runs.
    yield
    gc.collect()


# -- the pools' internal queues ---------------------------------------------------

@pytest.mark.parametrize("method", START_METHODS)
def test_pool_queues_are_ringipcs(method):
    ctx = ringipc.get_context(method)
    with ctx.Pool(2) as pool:
        for q in (pool._inqueue, pool._outqueue, pool._change_notifier):
            assert type(q) is RingSimpleQueue
        assert pool.map(square, range(50)) == [x * x for x in range(50)]
        assert pool.apply_async(square, (7,)).get(TIMEOUT) == 49


@pytest.mark.parametrize("method", START_METHODS)
def test_executor_queues(method):
    ctx = ringipc.get_context(method)
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        assert list(ex.map(square, range(50), timeout=TIMEOUT)) == [x * x for x in range(50)]
        assert type(ex._result_queue) is RingSimpleQueue
        # Documented in docs/dropins.md: the call queue is concurrent.futures'
        # own subclass of multiprocessing.queues.Queue, which no context
        # chooses (ringipc.ProcessPoolExecutor and install() replace it:
        # test_executor_ring.py).
        assert isinstance(ex._call_queue, multiprocessing.queues.Queue)


def test_context_get_context_none_is_itself():
    ctx = ringipc.get_context("spawn")
    assert ctx.get_context() is ctx
    assert ctx.get_context("fork").get_start_method() == "fork"


# -- readiness --------------------------------------------------------------------

def _ready(reader):
    return bool(multiprocessing.connection.wait([reader], 0))


@pytest.mark.parametrize("make", [SimpleQueue, Queue, JoinableQueue], ids=lambda c: c.__name__)
def test_reader_is_readable_exactly_while_a_message_waits(make):
    q = make()
    reader = q._reader
    fd = reader.fileno()
    assert not _ready(reader)
    q.put("a")
    q.put("b")
    # The ring's doorbell lights the descriptor: a bounded wait, not a sleep.
    assert select.select([fd], [], [], TIMEOUT)[0] == [fd]
    assert _ready(reader)
    assert reader.recv() == "a"
    assert _ready(reader)
    assert reader.recv() == "b"
    # A receive that empties the ring puts it out before it returns.
    assert select.select([fd], [], [], 0)[0] == []
    assert not _ready(reader)
    assert reader is q._reader  # stdlib code compares it with what wait() returned
    q.close()


def test_readiness_from_another_process():
    ctx = multiprocessing.get_context("fork")
    q = SimpleQueue()
    assert multiprocessing.connection.wait([q._reader], 0) == []
    p = ctx.Process(target=put_one, args=(q, 42))
    p.start()
    try:
        assert multiprocessing.connection.wait([q._reader, p.sentinel], TIMEOUT)
        assert q._reader.poll(TIMEOUT)
        assert q._reader.recv() == 42
        assert not _ready(q._reader)
    finally:
        p.join(TIMEOUT)
    assert p.exitcode == 0


def test_fileno_refreshes_only_when_a_take_may_have_left_it_wrong():
    """A pool's result thread calls fileno() in every wait: it drains and
    re-arms the doorbell (system calls) only if a message was taken since the
    descriptor was last made exact and it is not lit by the watch itself."""
    q = SimpleQueue()
    reader = q._reader
    reader.fileno()
    drains = []
    bell = q._watch._bell
    drain = bell.drain
    bell.drain = lambda: drains.append(1) or drain()
    for i in range(3):
        q.put(i)
    assert _ready(reader) and drains == []  # nothing taken: the commits rang it
    assert reader.recv() == 0
    assert _ready(reader) and drains == [1]  # taken, lit only by a writer: refresh (and light)
    assert reader.recv() == 1
    assert _ready(reader) and drains == [1]  # lit by the watch, a message waits: nothing to do
    assert reader.recv() == 2
    assert drains == [1, 1]  # the receive that emptied the ring put it out
    assert not _ready(reader) and drains == [1, 1]  # and the wait's fileno() trusts that
    q.put(3)
    assert _ready(reader) and drains == [1, 1]
    q.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["put", "get", "get_other", "wait", "fileno"]), max_size=40))
def test_readiness_model(ops):
    """After every step, readiness (as wait() sees it) <=> a message waits.
    ``get_other`` consumes through a second handle on the same ring, as
    another process would."""
    q = SimpleQueue()
    other = type(q).__new__(type(q))
    other.__setstate__(q.__getstate__())
    waiting = 0
    try:
        for op in ops:
            if op == "put":
                q.put(waiting)
                waiting += 1
            elif op in ("get", "get_other") and waiting:
                (q if op == "get" else other).get()
                waiting -= 1
            elif op == "fileno":
                q._reader.fileno()
            assert _ready(q._reader) == (waiting > 0), op
            if op == "get" and waiting == 0:
                # Our own receive put it out synchronously.
                assert select.select([q._reader.fileno()], [], [], 0)[0] == []
    finally:
        q.close()
        other.close()


def test_closing_the_reader_closes_its_doorbell():
    q = SimpleQueue()
    q._reader.fileno()
    watch = q._watch
    assert watch is not None and watch.active
    q._reader.close()
    assert not watch.active
    assert q._reader.closed
    with pytest.raises(OSError):
        q._reader.fileno()
    q.put(1)  # the queue itself stays usable, as multiprocessing's writer end does
    assert q.get() == 1


def test_ends_close_separately():
    q = SimpleQueue()
    q._writer.close()
    assert q._writer.closed and not q._reader.closed
    with pytest.raises(OSError):
        q._writer.send(1)
    q.put(2)
    assert q._reader.recv() == 2
    q.close()
    assert q._reader.closed and q._writer.closed


# -- install() ----------------------------------------------------------------------

def _kinds():
    import multiprocessing as mp
    return [type(mp.Queue()).__module__, type(mp.SimpleQueue()).__module__,
            type(mp.JoinableQueue()).__module__, type(mp.Pipe()[0]).__module__,
            type(mp.get_context("spawn").SimpleQueue()).__module__]


RING_KINDS = ["ringipc.mp.queues", "ringipc.mp.simplequeue", "ringipc.mp.queues", "ringipc.mp.connection",
              "ringipc.mp.simplequeue"]
MP_KINDS = ["multiprocessing.queues"] * 3 + ["multiprocessing.connection", "multiprocessing.queues"]


def test_install_is_idempotent_and_reversible():
    originals = (multiprocessing.Queue, multiprocessing.Pipe, multiprocessing.connection.wait,
                 multiprocessing.context.BaseContext.SimpleQueue)
    try:
        ringipc.install()
        ringipc.install()
        assert _kinds() == RING_KINDS
        with multiprocessing.get_context("fork").Pool(2) as pool:
            assert type(pool._inqueue) is RingSimpleQueue
            assert pool.map(square, range(20)) == [x * x for x in range(20)]
            assert pool.apply(_kinds) == RING_KINDS  # a forked worker
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as ex:
            assert type(ex._result_queue) is RingSimpleQueue
            assert type(ex._call_queue) is CallQueue
            assert list(ex.map(square, range(20), timeout=TIMEOUT)) == [x * x for x in range(20)]
    finally:
        ringipc.uninstall()
        ringipc.uninstall()
    assert (multiprocessing.Queue, multiprocessing.Pipe, multiprocessing.connection.wait,
            multiprocessing.context.BaseContext.SimpleQueue) == originals
    assert _kinds() == MP_KINDS
    assert "ringipc.mp._autoinstall" not in multiprocessing.forkserver._forkserver._preload_modules


SCRIPT = """
    import json, sys, multiprocessing as mp
    import concurrent.futures as cf

    def kinds(_=None):
        import multiprocessing as mp
        return [type(mp.Queue()).__module__, type(mp.SimpleQueue()).__module__,
                type(mp.JoinableQueue()).__module__, type(mp.Pipe()[0]).__module__,
                type(mp.get_context("spawn").SimpleQueue()).__module__]

    def square(x):
        return x * x

    if __name__ == "__main__":
        ctx = mp.get_context(sys.argv[1])
        out = {"argv": sys.argv[1:], "parent": kinds()}
        with ctx.Pool(2) as pool:
            out["pool_queue"] = type(pool._inqueue).__module__
            out["pool_child"] = pool.apply(kinds)
            out["pool_sum"] = sum(pool.map(square, range(100)))
        with cf.ProcessPoolExecutor(2, mp_context=ctx) as ex:
            out["executor_child"] = ex.submit(kinds).result()
            out["executor_sum"] = sum(ex.map(square, range(100)))
        print(json.dumps(out))
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_run_installs_in_the_script_and_its_children(method, tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(SCRIPT))
    proc = subprocess.run([sys.executable, "-m", "ringipc", "run", str(script), method, "x"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["argv"] == [method, "x"]
    assert out["parent"] == out["pool_child"] == out["executor_child"] == RING_KINDS
    assert out["pool_queue"] == "ringipc.mp.simplequeue"
    assert out["pool_sum"] == out["executor_sum"] == sum(x * x for x in range(100))


def test_run_usage():
    proc = subprocess.run([sys.executable, "-m", "ringipc", "run"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "usage: ringipc run" in proc.stderr


# -- a third-party library ----------------------------------------------------------

MPIRE_SCRIPT = """
    import json, sys
    from mpire import WorkerPool

    def square(x):
        return x * x

    if __name__ == "__main__":
        with WorkerPool(2, start_method=sys.argv[1]) as pool:
            results = pool.map(square, range(2000), chunk_size=50)
            kind = type(pool._worker_comms._results_queue).__module__
        print(json.dumps({"sum": sum(results), "queue": kind}))
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_mpire_runs_unmodified_on_ringipc(method, tmp_path):
    pytest.importorskip("mpire", reason="mpire (a parallel-map library) is not installed")
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(MPIRE_SCRIPT))
    proc = subprocess.run([sys.executable, "-m", "ringipc", "run", str(script), method],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"sum": sum(x * x for x in range(2000)), "queue": "ringipc.mp.queues"}


def test_context_capacity_sizes_the_pools_rings():
    ctx = ringipc.get_context("fork", capacity=1 << 16)
    assert ctx.get_context() is ctx and ctx.get_context("spawn")._capacity == 1 << 16
    with ctx.Pool(1) as pool:
        assert pool._inqueue._ring.capacity == pool._outqueue._ring.capacity == 1 << 16
        big = pool.apply(bytes, (1 << 17,))  # larger than a message: a side segment
        assert big == bytes(1 << 17)
