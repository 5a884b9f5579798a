"""ringipc.asyncio across real processes: exactly once from synchronous
producers to awaiting consumers and back (per-producer sequence numbers), a
peer SIGKILLed while tasks await it wakes them with the synchronous API's
exceptions, and Ctrl-C stops asyncio.run while a get awaits."""
import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys

import pytest

from _async_support import LOOPS, run, runner  # noqa: F401  (fixture)
from ringipc import asyncio as ra

ctx = multiprocessing.get_context("fork")
TIMEOUT = 60.0
N = 3000


def sync_produce(q, who, n):
    for i in range(n):
        q.put((who, i))
    os._exit(0)


def check_exactly_once(got, producers, n):
    nxt = [0] * producers
    for who, i in got:
        assert i == nxt[who], (who, i, nxt[who])
        nxt[who] += 1
    assert nxt == [n] * producers


@pytest.mark.parametrize("make", [lambda: ra.Queue(), lambda: ra.Queue(maxsize=16), lambda: ra.SimpleQueue()],
                         ids=["Queue", "bounded", "SimpleQueue"])
def test_sync_producers_async_consumers(run, make):
    async def main():
        q = make()
        procs = [ctx.Process(target=sync_produce, args=(q.sync, who, N)) for who in range(3)]
        for p in procs:
            p.start()
        got = []

        async def consume(k):
            for _ in range(k):
                got.append(await q.get())
        # Several awaiting tasks share the queue; each message goes to one.
        await asyncio.wait_for(asyncio.gather(*(consume(N) for _ in range(3))), TIMEOUT)
        for p in procs:
            p.join(TIMEOUT)
            assert p.exitcode == 0
        q.close()
        # Tasks interleave, so order holds per producer only among one task's
        # gets; exactly once holds overall.
        assert sorted(got) == sorted((who, i) for who in range(3) for i in range(N))
    run(main())


def async_produce(q, who, n, loop):
    async def main():
        async def part(start):
            for i in range(start, n, 2):
                await q.put((who, i))
        await asyncio.gather(part(0), part(1))
    with runner(loop) as r:
        r.run(main())
    q.close()
    os._exit(0)


@pytest.mark.parametrize("loop", LOOPS)
def test_async_producers_sync_consumer(loop):
    q = ra.Queue(maxsize=64)  # full puts must await room
    procs = [ctx.Process(target=async_produce, args=(q, who, N, loop)) for who in range(2)]
    for p in procs:
        p.start()
    got = [q.sync.get(timeout=TIMEOUT) for _ in range(2 * N)]
    for p in procs:
        p.join(TIMEOUT)
        assert p.exitcode == 0
    assert sorted(got) == sorted((who, i) for who in range(2) for i in range(N))
    q.close()


def pipe_produce(conn, n):
    for i in range(n):
        conn.send((0, i))
    conn.close()
    os._exit(0)


def test_pipe_sync_sender_async_receiver_in_order(run):
    async def main():
        a, b = ra.Pipe(capacity=1 << 12)  # a small ring: the sender waits for room
        p = ctx.Process(target=pipe_produce, args=(b.sync, N))
        p.start()
        b.sync.close()
        got = [m async for m in a]  # ends with EOF once the child is done
        p.join(TIMEOUT)
        check_exactly_once(got, 1, N)
        a.close()
    run(main())


def hold_and_wait(conn, ready):
    ready.put("holding")
    signal.pause()


@pytest.mark.parametrize("direction", ["recv", "send"])
def test_a_killed_peer_wakes_awaiting_tasks(run, direction):
    async def main():
        a, b = ra.Pipe(capacity=1 << 12)
        ready = ctx.SimpleQueue()
        p = ctx.Process(target=hold_and_wait, args=(b.sync, ready))
        p.start()
        b.close()
        assert ready.get() == "holding"
        if direction == "recv":
            task = asyncio.create_task(a.recv())
            expected = EOFError
        else:
            async def fill():
                while True:
                    await a.send_bytes(b"x" * 500)
            task = asyncio.create_task(fill())
            expected = BrokenPipeError
        for _ in range(50):
            await asyncio.sleep(0)  # the task is waiting (recv: empty; send: full)
        assert not task.done()
        os.kill(p.pid, signal.SIGKILL)
        p.join(TIMEOUT)
        with pytest.raises(expected):
            await asyncio.wait_for(task, TIMEOUT)
        a.close()
    run(main())


CTRL_C = """
import asyncio, sys
from ringipc import asyncio as ra
async def main():
    q = ra.SimpleQueue()
    try:
        task = asyncio.ensure_future(q.get())
        await asyncio.sleep(0)
        print("waiting", flush=True)
        await task
    finally:
        q.close()
asyncio.run(main())
"""


def test_ctrl_c_stops_asyncio_run_while_a_get_awaits():
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    child = subprocess.Popen([sys.executable, "-c", CTRL_C], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env, text=True)
    try:
        assert child.stdout.readline() == "waiting\n"
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=TIMEOUT)
    finally:
        child.kill()
        child.wait()
    assert child.returncode != 0 and "KeyboardInterrupt" in err
