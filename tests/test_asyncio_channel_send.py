"""AsyncChannel sends wait for room through the loop (ringipc/asyncio/_channel_send.py):
a full buffer with a slow reader leaves the loop running, frames arrive
whole, in order and exactly once, and cancellation withdraws a frame not
yet started or finishes one that is."""
import asyncio
import concurrent.futures
import hashlib
import os
import struct
import threading

import pytest

import ringipc
from ringipc import asyncio as ra
from ringipc.channels.transports.pipe import pipe_pair

from _async_support import run  # noqa: F401  (fixture)

TIMEOUT = 30
SEQ = struct.Struct("<Q")
SIZE = 64 << 10  # several per buffer
COUNT = 300  # more than the largest send buffer (unix: 8 MiB) holds


def message(i):
    body = SEQ.pack(i) + bytes([i % 251]) * (SIZE - SEQ.size - 16)
    return body + hashlib.blake2b(body, digest_size=16).digest()


def check(data):
    body, digest = data[:-16], data[-16:]
    assert hashlib.blake2b(body, digest_size=16).digest() == digest, "torn or mixed frame"
    return SEQ.unpack_from(body)[0]


def pair(scheme, tmp_path):
    """(sender channel, receiver channel), synchronous."""
    if scheme == "pipe":
        return pipe_pair()
    address = f"{scheme}://{tmp_path}/ch.sock"
    with ringipc.listen(address) as listener, concurrent.futures.ThreadPoolExecutor(1) as pool:
        accepted = pool.submit(listener.accept, TIMEOUT)
        client = ringipc.connect(address, timeout=TIMEOUT)
        return client, accepted.result(TIMEOUT)


SCHEMES = ["pipe", "unix", "unixpacket", "unixgram"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_full_buffer_waits_without_blocking_the_loop(run, tmp_path, scheme):  # noqa: F811
    tx, rx = pair(scheme, tmp_path)
    sender = ra.AsyncChannel(tx)
    loop_ran = threading.Event()
    got = []

    def slow_reader():
        # Starts only once the loop was seen running while a send waited;
        # after TIMEOUT regardless, so a blocked loop fails the test, not hangs it.
        loop_ran.wait(TIMEOUT)
        while True:
            data = rx.recv_bytes(timeout=TIMEOUT)
            if data == b"end":
                return
            got.append(check(data))

    async def main():
        sends = 0

        async def send_all():
            nonlocal sends
            for i in range(COUNT):
                await sender.send_bytes(message(i))
                sends += 1
            await sender.send_bytes(b"end")

        task = asyncio.create_task(send_all())
        # The buffer fills long before COUNT messages: the task must be
        # suspended in a send while this task keeps running.
        for _ in range(1000):
            await asyncio.sleep(0)
            if sender._sender._queue:
                break
        assert sender._sender._queue, "no send ever waited: the buffer never filled"
        assert not task.done() and sends < COUNT
        loop_ran.set()
        await asyncio.wait_for(task, TIMEOUT)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        reading = pool.submit(slow_reader)
        try:
            run(main())
        finally:
            loop_ran.set()
            reading.result(TIMEOUT)
    assert got == list(range(COUNT))  # whole, in order, exactly once
    sender.close()
    rx.close()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_cancelled_sends_withdraw_or_finish_their_frame(run, tmp_path, scheme):  # noqa: F811
    tx, rx = pair(scheme, tmp_path)
    sender = ra.AsyncChannel(tx)

    async def main():
        sent = []
        i = 0
        # Fill the buffer: sends that complete at once.
        while True:
            task = asyncio.create_task(sender.send_bytes(message(i)))
            await asyncio.sleep(0)
            if not task.done():
                break
            task.result()
            sent.append(i)
            i += 1
        first, first_i = task, i  # waiting; on a stream, part of it may be out
        started = sender._sender._queue[0].started
        second = asyncio.create_task(sender.send_bytes(message(i + 1)))
        third = asyncio.create_task(sender.send_bytes(message(i + 2)))
        await asyncio.sleep(0)
        assert not second.done() and not sender._sender._queue[1].started
        second.cancel()  # queued, nothing of it written: withdrawn
        first.cancel()   # withdrawn if nothing is out, else finished in the background
        for t in (first, second):
            with pytest.raises(asyncio.CancelledError):
                await t
        if started:
            sent.append(first_i)
        # Drain from a thread while the loop writes the rest.
        loop = asyncio.get_running_loop()
        expected = len(sent) + 1
        received = await loop.run_in_executor(None, lambda: [check(rx.recv_bytes(timeout=TIMEOUT))
                                                            for _ in range(expected)])
        await asyncio.wait_for(third, TIMEOUT)
        assert received == sent + [i + 2]
        assert not rx.poll(0)  # nothing else: the withdrawn ones never went

    run(main())
    sender.close()
    rx.close()


def test_closing_fails_waiting_sends(run):  # noqa: F811
    tx, rx = pipe_pair()
    sender = ra.AsyncChannel(tx)

    async def main():
        tasks = []
        while True:
            tasks.append(asyncio.create_task(sender.send_bytes(message(len(tasks)))))
            await asyncio.sleep(0)
            if not tasks[-1].done():
                break
        whole.extend(range(len(tasks) - 1))
        waiting = tasks[-1]
        sender.close()
        with pytest.raises(ringipc.ChannelClosed):
            await asyncio.wait_for(waiting, TIMEOUT)
        with pytest.raises(ringipc.ChannelClosed):
            await sender.send_bytes(b"x")

    whole = []
    run(main())
    # The peer sees the messages that went whole, then the end of the
    # stream (or a reset, when the last frame was torn by the close).
    got = []
    with pytest.raises((EOFError, ConnectionResetError)):
        while True:
            got.append(check(rx.recv_bytes(timeout=TIMEOUT)))
    assert got == whole
    rx.close()


def test_bad_arguments_are_refused_before_anything_is_sent(run):  # noqa: F811
    tx, rx = pipe_pair()
    sender = ra.AsyncChannel(tx)

    async def main():
        with pytest.raises(ValueError):
            await sender.send_bytes(b"abc", offset=4)
        with pytest.raises(ValueError):
            await sender.send_bytes(b"abc", 1, 5)
        await sender.send_bytes(b"abcdef", 2, 3)
        await sender.send({"k": os.getpid()})

    run(main())
    assert rx.recv_bytes(timeout=TIMEOUT) == b"cde"
    assert rx.recv(timeout=TIMEOUT) == {"k": os.getpid()}
    assert not rx.poll(0)
    sender.close()
    rx.close()


@pytest.mark.parametrize("scheme", ["tcp", "udp"])
def test_network_transports_send_through_the_loop(run, scheme):  # noqa: F811
    # (shm:// and mq://: tests/test_asyncio_channel_send_rings.py)
    address = f"{scheme}://127.0.0.1:0"
    with ringipc.listen(address) as listener, concurrent.futures.ThreadPoolExecutor(1) as pool:
        accepted = pool.submit(listener.accept, TIMEOUT)
        tx = ringipc.connect(listener.address, timeout=TIMEOUT)
        rx = accepted.result(TIMEOUT)
    sender = ra.AsyncChannel(tx)

    async def main():
        for i in range(20):
            await sender.send_bytes(SEQ.pack(i) * 8)

    run(main())
    assert [SEQ.unpack_from(rx.recv_bytes(timeout=TIMEOUT))[0] for _ in range(20)] == list(range(20))
    sender.close()
    rx.close()
