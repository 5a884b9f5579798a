"""``await JoinableQueue.join()`` waits through the loop: woken by the
task_done() (in another process) that brings the count to zero, never in an
executor thread, and never early."""
import asyncio
import multiprocessing
import os

import pytest

from ringipc import asyncio as ra

from _async_support import run  # noqa: F401  (fixture)

ctx = multiprocessing.get_context("fork")
TIMEOUT = 30
N = 200


def _worker(q, go, done_count):
    go.wait(TIMEOUT)  # the joiner waits before the first task_done
    for _ in range(N):
        q.get(timeout=TIMEOUT)
        with done_count.get_lock():
            done_count.value += 1
        q.task_done()
    os._exit(0)


def test_join_waits_through_the_loop_for_another_process(run):  # noqa: F811
    async def main():
        loop = asyncio.get_running_loop()

        def no_executor(*args, **kwargs):
            raise AssertionError("join must not wait in an executor thread")
        loop.run_in_executor = no_executor  # type: ignore[method-assign]
        q = ra.JoinableQueue()
        go = ctx.Event()
        done_count = ctx.Value("i", 0)
        for i in range(N):
            await q.put(i)
        p = ctx.Process(target=_worker, args=(q.sync, go, done_count))
        p.start()
        try:
            joining = asyncio.create_task(q.join())
            ticks = 0
            for _ in range(10):  # the loop runs other tasks while join waits
                await asyncio.sleep(0)
                ticks += 1
            assert not joining.done() and ticks == 10
            go.set()
            await asyncio.wait_for(joining, TIMEOUT)
            assert done_count.value == N  # not one task early
            await asyncio.wait_for(q.join(), TIMEOUT)  # nothing unfinished: at once
        finally:
            p.join(TIMEOUT)
            q.close()
        assert p.exitcode == 0

    run(main())


def test_a_cancelled_join_leaves_the_queue_usable(run):  # noqa: F811
    async def main():
        q = ra.JoinableQueue()
        try:
            await q.put(1)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(q.join(), 0.05)
            assert await q.get() == 1
            joining = asyncio.create_task(q.join())
            await asyncio.sleep(0)
            assert not joining.done()
            q.task_done()
            await asyncio.wait_for(joining, TIMEOUT)
        finally:
            q.close()

    run(main())
