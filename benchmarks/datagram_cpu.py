"""CPU time per message sent and received in one process: ``unixgram://`` and
``sysvmq://`` channels against the bare calls they wrap (a connected pair of
datagram sockets, ``send`` + ``recv_into``; ``sysv_ipc`` ``send`` +
``receive``), best of seven loops of 20,000 at 64 B and 1 KiB:

    python benchmarks/datagram_cpu.py

One process, so no scheduling between producer and consumer: what it shows
is what each side's code costs per message (docs/channels.md quotes it);
``python -m ringipc bench --only 'unixgram*,sysvmq*'`` measures the rates
across processes."""
import mmap
import os
import random
import socket
import threading
import time

import sysv_ipc

from ringipc.channels.address import connect, listen

N = 20000


def best(fn, reps=7):
    out = []
    for _ in range(reps):
        t = time.process_time()
        fn()
        out.append((time.process_time() - t) / N * 1e6)
    return min(out)


def pair(address):
    with listen(address) as lst:
        box = {}
        t = threading.Thread(target=lambda: box.setdefault("s", lst.accept(timeout=30)))
        t.start()
        c = connect(lst.address, timeout=30)
        t.join()
    return c, box["s"]


def main():
    for size in (64, 1024):
        msg = bytes(size)
        a, b = pair(f"unixgram://@ringipc-bench-dgram-{os.getpid()}-{size}")
        def ch():
            s, r = a.send_bytes, b.recv_bytes
            for _ in range(N):
                s(msg)
                r()
        x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        buf = mmap.mmap(-1, 65536)
        def ref():
            s, r = x.send, y.recv_into
            for _ in range(N):
                s(msg)
                r(buf)
                buf[:size]
        c, rr = best(ch), best(ref)
        print(f"unixgram {size:5} B  channel {c:.2f} us  reference {rr:.2f} us  ratio {c/rr:.2f}")
        for end in (a, b, x, y):
            end.close()
        key = random.randrange(1 << 24, 1 << 30)
        a, b = pair(f"sysvmq://{key}")
        def ch2():
            s, r = a.send_bytes, b.recv_bytes
            for _ in range(N):
                s(msg)
                r()
        q = sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, mode=0o600, max_message_size=size)
        def ref2():
            s, r = q.send, q.receive
            for _ in range(N):
                s(msg, True, 1)
                r(True, 1)[0]
        c, rr = best(ch2), best(ref2)
        print(f"sysvmq   {size:5} B  channel {c:.2f} us  reference {rr:.2f} us  ratio {c/rr:.2f}")
        a.close()
        b.close()
        q.remove()


if __name__ == "__main__":
    main()
