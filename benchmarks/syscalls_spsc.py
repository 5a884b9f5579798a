"""Count the system calls an SPSC run makes, for the claim "no syscall on the
uncontended path".  Run it under strace twice and subtract:

    strace -f -c -o /tmp/n0 python benchmarks/syscalls_spsc.py 0
    strace -f -c -o /tmp/n1 python benchmarks/syscalls_spsc.py 100000

The difference is what 10^5 messages cost (futex calls appear only when a side
had to sleep).  The producer and consumer are pinned to different cores.
"""
import os
import sys

import ringipc


def main(count):
    ring = ringipc.Ring(capacity=1 << 20, kind="spsc")
    payload = b"x" * 64
    pid = os.fork()
    if pid == 0:
        if len(os.sched_getaffinity(0)) > 1:
            os.sched_setaffinity(0, {0})
        send = ring.send_bytes
        for _ in range(count):
            send(payload)
        send(b"")  # end marker
        os._exit(0)
    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {1})
    recv = ring.recv_bytes
    for _ in range(count):
        assert recv() == payload
    assert recv() == b""
    os.waitpid(pid, 0)
    ring.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
