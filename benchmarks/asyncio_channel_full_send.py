"""Awaited sends on a full shm:// or mq:// channel, 64 B messages: µs per
message, and how many turns another task of the loop made per 1,000 sends
(0: the loop was blocked, or no send ever had to wait).

    PYTHONPATH=. python benchmarks/asyncio_channel_full_send.py shm|mq [COUNT] [asyncio|uvloop]

The sender awaits ``AsyncChannel.send_bytes`` in this process; a forked
synchronous reader takes every message.  The shm ring is 16 KiB and an mq
queue holds 10 messages, so the sender is ahead of the reader and its sends
wait for room most of the time.  A ticker task keeps yielding to the loop
meanwhile.  Compare builds in one run, alternately (the machine is shared).
"""
import asyncio
import multiprocessing
import os
import sys
import time

import ringipc
from ringipc import asyncio as ra


def main(scheme, n, loop):
    address = f"shm://bench-{os.getpid()}" if scheme == "shm" else f"mq:///bench-{os.getpid()}"
    opts = {"capacity": 1 << 14} if scheme == "shm" else {}
    ctx = multiprocessing.get_context("fork")

    def reader():
        ch = ringipc.connect(address, timeout=30)
        for _ in range(n):
            ch.recv_bytes(timeout=30)
        os._exit(0)
    with ringipc.listen(address, **opts) as listener:
        proc = ctx.Process(target=reader)
        proc.start()
        sender = ra.AsyncChannel(listener.accept(30))
    payload = b"x" * 64

    async def run():
        ticks, stop = 0, False

        async def tick():
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0)
        ticker = asyncio.create_task(tick())
        t0 = time.perf_counter()
        for _ in range(n):
            await sender.send_bytes(payload)
        elapsed = time.perf_counter() - t0
        stop = True
        await ticker
        return elapsed, ticks

    factory = None
    if loop == "uvloop":
        import uvloop
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as r:
        elapsed, ticks = r.run(run())
    proc.join(30)
    sender.close()
    print(f"{scheme} {loop}: {elapsed / n * 1e6:.2f} us/msg, {ticks * 1000 / n:.0f} ticker turns per 1000 sends")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100_000, sys.argv[3] if len(sys.argv) > 3 else "asyncio")
