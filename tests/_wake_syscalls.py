"""Run under strace by tests/test_ring_wakes.py: a consumer goes to sleep on an
empty ring and is then stopped (SIGSTOP) in its sleep, so that it stays
counted as a sleeper; the producer sends `count` messages; the consumer is
continued and must receive them all, in order.  Every shared-futex
FUTEX_WAKE that strace sees is the producer's (the consumer's releases find
no writer asleep), so the caller counts the wake system calls `count`
commits cost while one sleeper is counted: one, not one per commit."""
import os
import select
import signal
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _proc_support import asleep_in  # noqa: E402

import ringipc.core._ring as _ring  # noqa: E402
from ringipc import Ring  # noqa: E402

SEQ = struct.Struct("<Q")
LIMIT = 30.0


def _consume(ring, count, out):
    _ring.WAIT_SLICE = 3600.0  # one sleep, no wake-up between slices
    ring.spin = 0
    got = [SEQ.unpack(ring.recv_bytes())[0] for _ in range(count)]
    os.write(out, b"ok" if got == list(range(count)) else b"bad order")
    os._exit(0)


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _until(what, predicate, pid):
    give_up = time.monotonic() + LIMIT
    while not predicate():
        if time.monotonic() > give_up:
            os.kill(pid, signal.SIGKILL)  # a stopped child would keep strace waiting
            raise SystemExit(f"timed out waiting until {what}")
        os.sched_yield()


def main(kind, count):
    ring = Ring(1 << 20, kind=kind)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _consume(ring, count, w)
    _until("the consumer sleeps, counted",
           lambda: asleep_in(f"/proc/{pid}", "futex") and ring._debug_sleepers()["data"] == 1, pid)
    os.kill(pid, signal.SIGSTOP)
    # "t" rather than "T" when the stop is reported to a tracer (strace -f)
    _until("the consumer is stopped", lambda: _state(pid) in ("T", "t"), pid)
    for seq in range(count):
        ring.send_bytes(SEQ.pack(seq))
    os.kill(pid, signal.SIGCONT)
    if not select.select([r], [], [], LIMIT)[0]:
        os.kill(pid, signal.SIGKILL)
        raise SystemExit("the consumer was never woken")
    answer = os.read(r, 64)
    os.waitpid(pid, 0)
    ring.close()
    if answer != b"ok":
        raise SystemExit(answer.decode())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
