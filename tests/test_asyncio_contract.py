"""ringipc.asyncio in one process: the synchronous queue contract run against
the awaitable queues (one body, both APIs), then what only asyncio has:
many tasks awaiting one queue, cancellation at random moments losing and
duplicating nothing, waits that cost writers nothing once abandoned, full
sends that resume, and closing that wakes awaiting tasks."""
import asyncio
import gc
import os
import queue

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import test_queue_dropin as contract
from _async_support import AsyncImpl, LOOPS, run, runner  # noqa: F401  (fixture)
from ringipc import Ring
from ringipc import asyncio as ra

TIMEOUT = 30.0


@pytest.fixture
def aimpl(run):
    yield AsyncImpl(run)
    # The bodies drop queues without closing them, as users may; an exception
    # kept by pytest.raises holds frames that hold them, in cycles.
    gc.collect()


@pytest.mark.parametrize("body", [
    contract.test_fifo_and_nowait,
    contract.test_maxsize_counts_objects,
    contract.test_closed_queue,
    contract.test_unbounded_put_never_blocks_and_keeps_order,
    contract.test_objects_larger_than_the_ring,
    contract.test_joinable_queue,
    contract.test_simple_queue,
], ids=lambda f: f.__name__)
def test_sync_contract_on_async_queues(body, aimpl):
    body(aimpl)


# -- many waiters ------------------------------------------------------------------

@pytest.mark.parametrize("make", [ra.Queue, ra.SimpleQueue], ids=["Queue", "SimpleQueue"])
def test_many_tasks_awaiting_one_queue_each_get_one(run, make):
    async def main():
        q = make()
        try:
            tasks = [asyncio.create_task(q.get()) for _ in range(50)]
            await asyncio.sleep(0)  # every task is waiting now
            for i in range(50):
                q.sync.put(i)
            got = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
            assert sorted(got) == list(range(50))
            assert q.sync._ring._debug_sleepers()["data_bells"] == 0
        finally:
            q.close()
    run(main())


# -- cancellation --------------------------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4)), min_size=1, max_size=25),
       loop=st.sampled_from(["asyncio"] + (["uvloop"] if ra is not None and __import__("_async_support").uvloop else [])))
def test_cancelled_gets_lose_and_duplicate_nothing(plan, loop):
    """Each step: start some gets, put some messages, let the loop run a
    random number of turns, cancel every get still pending.  Whatever was
    delivered plus what is left in the queue is exactly what was put."""
    async def main():
        q = ra.SimpleQueue()
        sent, got, n = [], [], 0
        try:
            for puts, turns in plan:
                tasks = [asyncio.create_task(q.get()) for _ in range(2)]
                for _ in range(puts):
                    q.sync.put(n)
                    sent.append(n)
                    n += 1
                for _ in range(turns):
                    await asyncio.sleep(0)
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    try:
                        got.append(await t)
                    except asyncio.CancelledError:
                        pass
                # No task waits: no bell may be left armed for writers to ring.
                assert q.sync._ring._debug_sleepers()["data_bells"] == 0
            while not q.empty():
                got.append(q.get_nowait())
            assert sorted(got) == sent
        finally:
            q.close()
    with runner(loop) as r:
        r.run(main())
    gc.collect()


def test_timeouts_work(run):
    async def main():
        q = ra.Queue()
        try:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(q.get(), 0.05)
            async with asyncio.timeout(0.05):
                q.sync.put("x")
                assert await q.get() == "x"
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await q.get()
        finally:
            q.close()
    run(main())


# -- full sends ---------------------------------------------------------------------

def test_put_on_a_full_bounded_queue_resumes_when_a_get_frees_a_slot(run):
    async def main():
        q = ra.Queue(maxsize=2)
        try:
            await q.put(1)
            await q.put(2)
            waiting = asyncio.create_task(q.put(3))
            await asyncio.sleep(0)
            assert not waiting.done()
            assert q.sync.get() == 1  # a synchronous get frees the slot
            await asyncio.wait_for(waiting, TIMEOUT)
            assert [await q.get(), await q.get()] == [2, 3]
        finally:
            q.close()
    run(main())


def test_send_on_a_full_ring_resumes_when_read(run):
    async def main():
        async with ra.AsyncRing(4096) as ring:
            n = 0
            while True:
                try:
                    ring.send_bytes_nowait(bytes(100))
                    n += 1
                except queue.Full:
                    break
            waiting = asyncio.create_task(ring.send_bytes(b"last"))
            await asyncio.sleep(0)
            assert not waiting.done()
            ring.ring.recv_bytes()
            await asyncio.wait_for(waiting, TIMEOUT)
            got = [await ring.recv_bytes() for _ in range(n)]
            assert got[-1] == b"last"
    run(main())


def test_full_simple_queue_put_waits_then_completes(run):
    async def main():
        q = ra.SimpleQueue(capacity=4096)
        try:
            n = 0
            while True:
                try:
                    q.put_nowait(b"x" * 200)
                    n += 1
                except queue.Full:
                    break
            waiting = asyncio.create_task(q.put("tail"))
            await asyncio.sleep(0)
            assert not waiting.done()
            got = [q.sync.get() for _ in range(n)]
            await asyncio.wait_for(waiting, TIMEOUT)
            assert q.sync.get() == "tail" and len(got) == n
        finally:
            q.close()
    run(main())


# -- the ring, the pipe, EOF and closing ----------------------------------------------------

def test_ring_async_for_ends_at_shutdown_and_recv_into(run):
    async def main():
        async with ra.AsyncRing(1 << 16) as ring:
            for i in range(5):
                await ring.send_bytes(bytes([i]) * 3)
            buf = bytearray(8)
            assert await ring.recv_bytes_into(buf) == 3 and buf[:3] == b"\0\0\0"
            ring.shutdown("write")
            assert [m async for m in ring] == [bytes([i]) * 3 for i in range(1, 5)]
    run(main())


def test_shutdown_wakes_an_awaiting_receive(run):
    async def main():
        async with ra.AsyncRing(4096) as ring:
            task = asyncio.create_task(ring.recv_bytes())
            await asyncio.sleep(0)
            ring.ring._another_handle().shutdown("write")
            with pytest.raises(EOFError):
                await asyncio.wait_for(task, TIMEOUT)
    run(main())


def test_pipe_both_ends_async(run):
    async def main():
        a, b = ra.Pipe()
        async with a, b:
            await a.send({"k": [1, 2]})
            await a.send_bytes(b"0123456789", 2, 3)
            assert await b.recv() == {"k": [1, 2]}
            buf = bytearray(10)
            assert await b.recv_bytes_into(buf, 1) == 3 and buf[1:4] == b"234"
            await b.send(None)
            assert await a.recv() is None
            task = asyncio.create_task(b.recv())
            await asyncio.sleep(0)
            a.sync.send("sync side")
            assert await asyncio.wait_for(task, TIMEOUT) == "sync side"
            a.close()
            with pytest.raises(EOFError):
                await asyncio.wait_for(b.recv(), TIMEOUT)
    run(main())


def test_closing_wakes_awaiting_tasks(run):
    async def main():
        q = ra.SimpleQueue()
        task = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        q.close()
        with pytest.raises(OSError):
            await asyncio.wait_for(task, TIMEOUT)
    run(main())


@pytest.mark.parametrize("scheme", ["unix", "shm"])
def test_a_channel_is_awaitable(run, tmp_path, scheme):
    import concurrent.futures
    import ringipc

    async def main():
        address = f"unix://{tmp_path}/ch.sock" if scheme == "unix" else f"shm://aio-{os.getpid()}"
        with ringipc.listen(address) as listener, concurrent.futures.ThreadPoolExecutor(1) as pool:
            # accept() sends the greeting connect() waits for: one beside the other.
            accepted = pool.submit(listener.accept, TIMEOUT)
            client = ra.AsyncChannel(ringipc.connect(address, timeout=TIMEOUT))
            server = ra.AsyncChannel(accepted.result(TIMEOUT))
            async with client, server:
                task = asyncio.create_task(server.recv())
                await asyncio.sleep(0)
                await client.send({"hello": 1})
                assert await asyncio.wait_for(task, TIMEOUT) == {"hello": 1}
                await server.send_bytes(b"back")
                assert await client.recv_bytes() == b"back"
    run(main())


def test_awaiting_a_queue_whose_reader_descriptor_is_in_use(run):
    """The drop-in's _reader.fileno() and an awaiting task each have a bell
    on the same queue (the second on a handle of its own): both ring."""
    import select

    async def main():
        q = ra.SimpleQueue()
        try:
            fd = q.sync._reader.fileno()
            task = asyncio.create_task(q.get())
            await asyncio.sleep(0)
            q.sync.put(7)
            assert select.select([fd], [], [], TIMEOUT)[0] == [fd]
            assert await asyncio.wait_for(task, TIMEOUT) == 7
        finally:
            q.close()
    run(main())


def test_objects_larger_than_the_ring_through_a_pipe_and_a_simple_queue(run):
    # They travel in side segments (slabs of the sending end's pool), as the
    # synchronous ends' do; each payload differs so a mix-up would show.
    async def main():
        a, b = ra.Pipe()
        async with a, b:
            for i in range(3):
                payload = bytes([i]) * (4 << 20)
                await a.send_bytes(payload)
                await a.send(payload)
                assert await b.recv_bytes() == payload and await b.recv() == payload
        q = ra.SimpleQueue(capacity=1 << 16)
        try:
            for i in range(3):
                payload = bytes([i + 1]) * (1 << 20)
                await q.put(payload)
                assert await q.get() == payload
                q.put_nowait(payload)
                assert q.get_nowait() == payload
        finally:
            q.close()
    run(main())


def test_a_large_send_cancelled_while_the_ring_is_full_hands_its_slab_back(run):  # noqa: F811
    """A large object is written into a slab before its reference waits for
    room in the ring; cancelled there, the slab goes back to the pool (FREE)
    instead of staying taken, and the next large sends reuse the pool."""
    from ringipc.core import slabs
    from ringipc.core._bulk import load_u64

    a, b = ra.Pipe(capacity=1 << 16)

    async def main():
        while True:  # fill the ring with small messages until a send waits
            task = asyncio.create_task(a.send_bytes(b"x" * 1000))
            await asyncio.sleep(0)
            if not task.done():
                break
        large = asyncio.create_task(a.send(bytearray(os.urandom(1 << 20))))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not large.done(), "the ring had room: nothing to cancel"
        large.cancel()
        with pytest.raises(asyncio.CancelledError):
            await large
        pool = slabs._pools[a.sync._tx.name]
        assert pool.slabs and all(load_u64(s.mapping, 0) & 3 == slabs.FREE for s in pool.slabs)
        task.cancel()

    try:
        run(main())
    finally:
        a.close()
        b.close()
