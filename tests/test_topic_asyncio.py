"""ringipc.asyncio over topics (AsyncSubscriber, AsyncPublisher) on the
default loop and uvloop: exactly once per subscriber, in order, from a
synchronous publisher in another process to awaiting subscribers (sequence
numbers and checksums), and from an awaiting publisher held back by a
lossless topic's subscriber in another process; cancellation at random
moments loses and duplicates nothing; timeouts; late joiners with history;
a dead subscriber does not hold an awaiting publisher for ever; close()
wakes awaiting tasks."""
import asyncio
import multiprocessing
import os
import queue
import random
import signal
import struct
import zlib

import pytest

from _async_support import LOOPS, run, runner  # noqa: F401  (fixture)
from ringipc import Topic
from ringipc import asyncio as ra

ctx = multiprocessing.get_context("fork")
TIMEOUT = 60.0
N = 5000
REC = struct.Struct("<QI")  # sequence number, crc32 of the payload


def message(i):
    payload = random.Random(i).randbytes(i % 300)
    return REC.pack(i, zlib.crc32(payload)) + payload


def check(msg, i):
    seq, crc = REC.unpack_from(msg)
    assert seq == i, (seq, i)
    assert zlib.crc32(msg[REC.size:]) == crc


def sync_publish(t, n):
    pub = t.publisher()
    for i in range(n):
        pub.send_bytes(message(i), timeout=TIMEOUT)
    os._exit(0)


@pytest.mark.parametrize("capacity", [1 << 12, 1 << 20])
def test_sync_publisher_async_subscribers(run, capacity):
    """1 -> 4 across processes; the small lossless topic makes the publisher
    wait for the awaiting subscribers too."""
    async def main():
        with Topic(capacity=capacity) as t:
            subs = [ra.AsyncSubscriber(t) for _ in range(4)]
            p = ctx.Process(target=sync_publish, args=(t, N))
            p.start()

            async def consume(sub):
                for i in range(N):
                    check(await sub.recv_bytes(), i)
            try:
                await asyncio.wait_for(asyncio.gather(*(consume(s) for s in subs)), TIMEOUT)
            finally:
                p.join(TIMEOUT)
            assert p.exitcode == 0
            for s in subs:
                assert s.missed == 0 and s.seq == N - 1
                s.close()
    run(main())


def sync_subscribe(t, ready, n, q):
    sub = t.subscribe()
    ready.set()
    try:
        for i in range(n):
            check(sub.recv_bytes(timeout=TIMEOUT), i)
        q.put("ok")
    except BaseException as exc:  # reported, not swallowed: the parent asserts on it
        q.put(repr(exc))
    os._exit(0)


def test_async_publisher_sync_subscribers(run):
    async def main():
        with Topic(capacity=1 << 12) as t:
            ready, results = ctx.Event(), ctx.SimpleQueue()  # put() is done when it returns: the child _exits
            procs = [ctx.Process(target=sync_subscribe, args=(t, ready, N, results)) for _ in range(2)]
            for p in procs:
                ready.clear()
                p.start()
                assert ready.wait(TIMEOUT)
            async with ra.AsyncPublisher(t) as pub:
                for i in range(N):
                    await asyncio.wait_for(pub.send_bytes(message(i)), TIMEOUT)
            for p in procs:
                p.join(TIMEOUT)
                assert p.exitcode == 0
            assert [results.get() for _ in procs] == ["ok", "ok"]
    run(main())


def test_objects_async_for_and_a_late_joiner_with_history(run):
    async def main():
        with Topic(capacity=1 << 16) as t:
            pub = ra.AsyncPublisher(t)
            for i in range(5):
                await pub.send({"i": i})
            late = ra.AsyncSubscriber(t, history=2)
            assert [await late.recv() for _ in range(2)] == [{"i": 3}, {"i": 4}]
            sub = ra.AsyncSubscriber(t.subscribe())
            await pub.send("a")
            await pub.send("b")
            got = []
            async for obj in sub:
                got.append(obj)
                if len(got) == 2:
                    break
            assert got == ["a", "b"]
            buf = bytearray(16)
            await pub.send_bytes(b"xyz")
            assert await late.recv() == "a"
            assert await late.recv() == "b"
            assert await late.recv_bytes_into(buf) == 3 and buf[:3] == b"xyz"
            await pub.send_bytes(b"view")
            with await sub.recv_view() as view:
                assert bytes(view) == b"xyz"
            assert sub.recv_bytes_nowait() == b"view"
            for h in (pub, late, sub):
                h.close()
    run(main())


def test_timeout_then_the_message_still_comes(run):
    async def main():
        with Topic(capacity=4096) as t:
            sub = ra.AsyncSubscriber(t)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sub.recv_bytes(), 0.01)
            t.publisher().send_bytes(b"late")
            assert await asyncio.wait_for(sub.recv_bytes(), TIMEOUT) == b"late"
            sub.close()
    run(main())


@pytest.mark.parametrize("seed", range(3))
def test_cancellation_at_random_moments_loses_nothing(run, seed):
    """A background publisher (lossless, small: it waits too) and receives
    cancelled after a random number of loop turns: every message arrives
    once, in order, either to a receive that completed or a later one."""
    rng = random.Random(seed)
    n = 2000

    async def main():
        with Topic(capacity=1 << 11) as t:
            sub, pub = ra.AsyncSubscriber(t), ra.AsyncPublisher(t)

            async def produce():
                for i in range(n):
                    await pub.send_bytes(message(i))
                    if rng.random() < 0.1:
                        await asyncio.sleep(0)
            producer = asyncio.ensure_future(produce())
            i = cancels = 0
            while i < n:
                task = asyncio.ensure_future(sub.recv_bytes())
                for _ in range(rng.randrange(4)):
                    await asyncio.sleep(0)
                if task.done() or rng.random() < 0.3:
                    msg = await asyncio.wait_for(task, TIMEOUT)
                    check(msg, i)
                    i += 1
                else:
                    task.cancel()
                    try:
                        check(await task, i)  # it had the message already
                        i += 1
                    except asyncio.CancelledError:
                        cancels += 1
            await asyncio.wait_for(producer, TIMEOUT)
            assert sub.poll() is False
            assert cancels > 0
            sub.close()
            pub.close()
    run(main())


def subscribe_and_die(t, ready):
    sub = t.subscribe()  # noqa: F841  (held: it is what holds the publisher)
    ready.set()
    signal.pause()


def test_dead_subscriber_does_not_hold_an_awaiting_publisher(run):
    async def main():
        with Topic(capacity=1 << 10) as t:
            ready = ctx.Event()
            p = ctx.Process(target=subscribe_and_die, args=(t, ready))
            p.start()
            assert ready.wait(TIMEOUT)
            pub = ra.AsyncPublisher(t)
            with pytest.raises(queue.Full):  # fills the topic: the subscriber holds it
                for _ in range(100):
                    pub.send_bytes_nowait(b"x" * 100)
            send = asyncio.ensure_future(pub.send_bytes(b"y" * 400))
            await asyncio.sleep(0)
            assert not send.done()
            os.kill(p.pid, signal.SIGKILL)
            p.join(TIMEOUT)
            await asyncio.wait_for(send, TIMEOUT)
            assert t.subscribers == 0
            pub.close()
    run(main())


def test_close_wakes_awaiting_tasks(run):
    async def main():
        with Topic(capacity=4096) as t:
            sub = ra.AsyncSubscriber(t)
            task = asyncio.ensure_future(sub.recv_bytes())
            await asyncio.sleep(0)
            sub.close()
            with pytest.raises(OSError):
                await asyncio.wait_for(task, TIMEOUT)
            with pytest.raises(TypeError):
                ra.AsyncSubscriber(t.publisher())  # type: ignore[arg-type]
    run(main())
