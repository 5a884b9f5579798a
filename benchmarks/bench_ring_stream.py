"""Byte-stream throughput: ringipc.stream_pair against os.pipe, same run.

    python benchmarks/bench_ring_stream.py [--block 65536] [--total-mib 1024] [--rounds 3]

A child process writes ``total`` bytes in ``block``-sized writes; the parent
reads them with ``readinto`` into one reused buffer (of ``--read`` bytes) and
counts them.  Rounds alternate between the two so machine drift hits both.
"""
import argparse
import multiprocessing
import os
import statistics
import time

from ringipc.ring_stream import stream_pair

CTX = multiprocessing.get_context("fork")
PIN = True


def _write(write, block, total):
    data = memoryview(os.urandom(block))
    for _ in range(total // block):
        n = 0
        while n < block:
            n += write(data[n:])


CPUS = sorted(os.sched_getaffinity(0))  # before anyone pins: children inherit the parent's set


def _pin(cpu):
    if len(CPUS) > 1:
        os.sched_setaffinity(0, {CPUS[cpu % len(CPUS)]})


def _pipe_child(fd, block, total):
    if PIN:
        _pin(1)
    _write(lambda v: os.write(fd, v), block, total)
    os.close(fd)


def _ring_child(w, block, total):
    if PIN:
        _pin(1)
    _write(w.write, block, total)
    w.close()


def run_pipe(block, total, read):
    r, w = os.pipe()
    proc = CTX.Process(target=_pipe_child, args=(w, block, total))
    start = time.perf_counter()
    proc.start()
    os.close(w)
    buf = bytearray(read)
    got = 0
    while True:
        n = os.readv(r, [buf])
        if not n:
            break
        got += n
    elapsed = time.perf_counter() - start
    proc.join()
    os.close(r)
    assert got == total
    return total / elapsed


def run_ring(block, total, read, capacity):
    w, r = stream_pair(capacity)
    proc = CTX.Process(target=_ring_child, args=(w, block, total))
    start = time.perf_counter()
    proc.start()
    w.close()
    buf = bytearray(read)
    got = 0
    while True:
        n = r.readinto(buf)
        if not n:
            break
        got += n
    elapsed = time.perf_counter() - start
    proc.join()
    r.close()
    assert got == total
    return total / elapsed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--block", type=int, default=64 << 10)
    p.add_argument("--read", type=int, default=64 << 10, help="reader buffer size")
    p.add_argument("--total-mib", type=int, default=1024)
    p.add_argument("--capacity", type=int, default=1 << 20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin writer and reader to different CPUs")
    a = p.parse_args()
    total = (a.total_mib << 20) // a.block * a.block
    global PIN
    PIN = a.pin
    if a.pin:
        _pin(0)
    pipe, ring = [], []
    for _ in range(a.rounds):
        pipe.append(run_pipe(a.block, total, a.read))
        ring.append(run_ring(a.block, total, a.read, a.capacity))
    mp, mr = statistics.median(pipe), statistics.median(ring)
    print(f"block {a.block} B, read buffer {a.read} B, {total >> 20} MiB x {a.rounds} rounds, ring capacity {a.capacity}")
    print(f"os.pipe     {mp / 2**30:6.2f} GiB/s")
    print(f"ring stream {mr / 2**30:6.2f} GiB/s   ({mr / mp:.2f}x os.pipe)")


if __name__ == "__main__":
    main()
