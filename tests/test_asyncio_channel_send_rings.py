"""AsyncChannel sends on shm:// and mq:// wait for room through the loop
(ringipc/asyncio/_shm_send.py; the mq writer of _channel_send.py): a full
channel leaves the loop running while a synchronous reader in another
process drains it, messages arrive exactly once and in order, cancellation
withdraws a send whole, a SIGKILLed shm reader wakes the waiting send with
BrokenPipeError, close() fails it with ChannelClosed, and a send that finds
room makes the synchronous send's system calls and no more (strace)."""
import asyncio
import collections
import concurrent.futures
import hashlib
import multiprocessing
import os
import random
import shutil
import signal
import socket
import re
import struct
import traceback

import pytest

import ringipc
from ringipc import asyncio as ra

from _async_support import run, runner, uvloop  # noqa: F401  (fixture)
from _strace import traced

ctx = multiprocessing.get_context("fork")
TIMEOUT = 30
SCHEMES = ["shm", "mq"]
SMALL_RING = 1 << 14  # shm: a few hundred 64 B messages fill it; mq queues hold 10
COUNT = 2000
CALL = re.compile(r"^(?:\d+\s+)?(\w+)\(")
ITEM = struct.Struct("<QQ")  # producer, sequence number


def message(who, i):
    body = ITEM.pack(who, i) + bytes([(who + i) % 251]) * 32
    return body + hashlib.blake2b(body, digest_size=16).digest()


def check(data):
    body, digest = data[:-16], data[-16:]
    assert hashlib.blake2b(body, digest_size=16).digest() == digest, "torn or mixed message"
    return ITEM.unpack_from(body)


def address(scheme):
    return f"shm://aiosend-{os.getpid()}" if scheme == "shm" else f"mq:///aiosend-{os.getpid()}"


def listen(scheme):
    return ringipc.listen(address(scheme), **({"capacity": SMALL_RING} if scheme == "shm" else {}))


def pair(scheme):
    """(sender, receiver), both synchronous channels in this process."""
    with listen(scheme) as listener, concurrent.futures.ThreadPoolExecutor(1) as pool:
        accepted = pool.submit(listener.accept, TIMEOUT)
        rx = ringipc.connect(address(scheme), timeout=TIMEOUT)
        return accepted.result(TIMEOUT), rx


def with_reader(scheme, reader, *args):
    """(sender channel, the reader process): the child connects and runs reader(channel, *args)."""
    listener = listen(scheme)
    where = address(scheme)  # the parent's pid: not the child's
    try:
        def child():
            code = 1
            try:
                reader(ringipc.connect(where, timeout=TIMEOUT), *args)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        proc = ctx.Process(target=child)
        proc.start()
        return listener.accept(TIMEOUT), proc
    finally:
        listener.close()


def read_exactly_once(ch, go, producers, count):
    go.wait(TIMEOUT)  # starts only once the parent saw a send wait
    nxt = [0] * producers
    for _ in range(producers * count):
        who, i = check(ch.recv_bytes(timeout=TIMEOUT))
        assert i == nxt[who], (who, i, nxt[who])
        nxt[who] += 1
    assert not ch.poll(0)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_full_channel_waits_without_blocking_the_loop(run, scheme):  # noqa: F811
    go = ctx.Event()
    tx, proc = with_reader(scheme, read_exactly_once, go, 2, COUNT)
    sender = ra.AsyncChannel(tx)

    async def main():
        sends = 0

        async def produce(who):
            nonlocal sends
            for i in range(COUNT):
                await sender.send_bytes(message(who, i))
                sends += 1
        tasks = [asyncio.create_task(produce(who)) for who in range(2)]
        # The reader has not started: the channel fills and both producers
        # wait, while this task keeps running.
        ticks, stalled_at, last = 0, 0, -1
        while ticks - stalled_at < 200:
            await asyncio.sleep(0)
            ticks += 1
            if sends != last:
                stalled_at, last = ticks, sends
            assert ticks < 100_000, "the sends never filled the channel"
        # This task ran 200 turns while no send completed: the loop is free.
        assert sends < 2 * COUNT and not any(t.done() for t in tasks)
        go.set()  # only now can the waiting sends complete: the reader starts
        await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
        assert sends == 2 * COUNT

    try:
        run(main())
    finally:
        go.set()
        proc.join(TIMEOUT)
    assert proc.exitcode == 0  # every message whole, in order, exactly once
    sender.close()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("seed", range(6))
def test_cancelled_sends_are_withdrawn_whole(scheme, seed):
    """Sends started in batches, the loop run a random number of turns, a
    random subset cancelled, some messages read: what the reader gets is
    exactly the sends that returned, in order."""
    rnd = random.Random(seed)
    loop = "uvloop" if uvloop is not None and seed % 2 else "asyncio"
    tx, rx = pair(scheme)
    sender = ra.AsyncChannel(tx)
    done, got = [], []

    def drain(limit):
        while len(got) < limit:
            try:
                got.append(check(rx.recv_bytes(timeout=0))[1])
            except TimeoutError:
                return

    async def main():
        n = 0
        for _ in range(30):
            tasks = {}
            for _ in range(rnd.randrange(1, 40)):
                tasks[n] = asyncio.create_task(sender.send_bytes(message(0, n)))
                n += 1
            for _ in range(rnd.randrange(4)):
                await asyncio.sleep(0)
            for t in rnd.sample(list(tasks.values()), rnd.randrange(len(tasks) + 1)):
                t.cancel()
            drain(len(got) + rnd.randrange(30))
            for _ in range(rnd.randrange(3)):
                await asyncio.sleep(0)
            for i, t in tasks.items():
                if not t.done():  # waiting for room: the reader makes all it can
                    drain(len(got) + COUNT)
                try:
                    await asyncio.wait_for(t, TIMEOUT)
                    done.append(i)
                except asyncio.CancelledError:
                    assert t.cancelled()

    with runner(loop) as r:
        r.run(main())
    drain(len(done) + 1)
    assert done and got == done  # nothing lost, nothing duplicated, nothing of a cancelled send
    sender.close()
    rx.close()


async def send_until_one_waits(sender):
    """Send numbered messages until one finds no room; (its task, how many went)."""
    sent = 0
    while True:
        task = asyncio.create_task(sender.send_bytes(message(0, sent)))
        await asyncio.sleep(0)
        if not task.done():
            return task, sent
        task.result()
        sent += 1


def never_read(ch):
    while True:
        signal.pause()  # until killed


def test_a_killed_shm_reader_wakes_a_waiting_send(run):  # noqa: F811
    # (mq:// has no peer to lose: a killed reader gives no EOF, synchronously
    # too; docs/channels.md says to use timeouts there.)
    tx, proc = with_reader("shm", never_read)
    sender = ra.AsyncChannel(tx)

    async def main():
        task, _ = await send_until_one_waits(sender)
        for _ in range(10):
            await asyncio.sleep(0)
        assert not task.done()  # waiting for room the reader will never make
        os.kill(proc.pid, signal.SIGKILL)
        with pytest.raises(BrokenPipeError):
            await asyncio.wait_for(task, TIMEOUT)

    try:
        run(main())
    finally:
        proc.kill()
        proc.join(TIMEOUT)
    sender.close()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_closing_fails_a_waiting_send(run, scheme):  # noqa: F811
    tx, rx = pair(scheme)
    sender = ra.AsyncChannel(tx)

    async def main():
        task, sent = await send_until_one_waits(sender)
        later = asyncio.create_task(sender.send_bytes(message(0, sent + 1)))
        await asyncio.sleep(0)
        sender.close()
        for t in (task, later):
            with pytest.raises(ringipc.ChannelClosed):
                await asyncio.wait_for(t, TIMEOUT)
        with pytest.raises(ringipc.ChannelClosed):
            await sender.send_bytes(b"x")
        return sent

    sent = run(main())
    got = []
    while True:  # what went before the close, and nothing of the failed sends
        try:
            got.append(check(rx.recv_bytes(timeout=0))[1])
        except (EOFError, TimeoutError):  # (mq: no EOF message fits a full queue)
            break
    assert got == list(range(sent))
    rx.close()


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_send_that_finds_room_costs_what_a_synchronous_one_does(scheme):
    def calls(mode):
        lines = traced("_channel_send_syscalls.py", [scheme, mode, 50], "all")
        marks = [k for k, line in enumerate(lines) if "getppid(" in line]
        window = lines[marks[0] + 1:marks[1]]
        names = [m.group(1) for m in map(CALL.match, window) if m]
        return sorted(n for n in names if n not in ("brk", "mmap", "munmap", "madvise", "mprotect"))
    sync, awaited = calls("sync"), calls("async")
    per_message = "sendto" if scheme == "shm" else "mq_timedsend"
    assert awaited.count(per_message) == sync.count(per_message) == 50
    # Beside them, either run may make the checks that go by the clock (the
    # peer's socket every PEER_CHECK, the ring's liveness probes of
    # /proc/PID/stat): their number depends on how long the window lasts.
    # Nothing else: no epoll_ctl, no extra send, no wake-up.
    extra = collections.Counter(awaited) - collections.Counter(sync)
    assert set(extra) <= {"poll", "kill", "openat", "read", "close"}, extra


def test_doorbells_the_socket_has_no_room_for_follow_when_it_has(run):  # noqa: F811
    """A shm message's doorbell byte (the peer's readiness) that does not
    fit the socket is written by the loop later: an awaiting receiver,
    which waits on that readiness, still gets every message."""
    tx, rx = pair("shm")
    tx._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)  # the kernel's minimum: a few doorbells
    sender, receiver = ra.AsyncChannel(tx), ra.AsyncChannel(rx)
    n = 1000

    async def main():
        owed = 0

        async def produce():
            nonlocal owed
            for i in range(n):
                await sender.send_bytes(message(0, i))
                owed = max(owed, sender._sender._shm._owed)
        task = asyncio.create_task(produce())
        got = [check(await asyncio.wait_for(receiver.recv_bytes(), TIMEOUT))[1] for _ in range(n)]
        await asyncio.wait_for(task, TIMEOUT)
        assert got == list(range(n))
        assert owed, "every doorbell fitted: the test did not test the owed ones"

    run(main())
    sender.close()
    receiver.close()
