"""Run under strace by tests/test_asyncio_channel_send_rings.py: `count`
64 B messages sent on a shm:// or mq:// channel (synchronously, or awaited
on an AsyncChannel while nothing waits) and each received at once in this
process, between two getppid() calls that mark the window to count."""
import asyncio
import concurrent.futures
import os
import sys

import ringipc
from ringipc import asyncio as ra


def main(scheme, mode, count):
    address = f"shm://sys-{os.getpid()}" if scheme == "shm" else f"mq:///sys-{os.getpid()}"
    with ringipc.listen(address) as listener, concurrent.futures.ThreadPoolExecutor(1) as pool:
        accepted = pool.submit(listener.accept, 30)
        rx = ringipc.connect(address, timeout=30)
        tx = accepted.result(30)
    payload = b"x" * 64
    if mode == "sync":
        os.getppid()
        for _ in range(count):
            tx.send_bytes(payload)
            rx.recv_bytes()
        os.getppid()
    else:
        sender = ra.AsyncChannel(tx)

        async def run():
            os.getppid()
            for _ in range(count):
                await sender.send_bytes(payload)
                rx.recv_bytes()
            os.getppid()
        asyncio.run(run())
    tx.close()
    rx.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
