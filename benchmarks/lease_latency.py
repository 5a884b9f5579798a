"""Zero-copy receive latency by size, across processes: the curve of
``Queue.get_lease()`` + reading the array + ``release()`` against a copying
``get()``, for NumPy arrays of 64 KiB to 256 MiB.

    python benchmarks/lease_latency.py [--sizes 64K,1M,4M,16M,64M,256M] [--count 15]

A forked producer puts one array at a time and waits for the consumer's
acknowledgement before the next, so each receive is timed alone: the object
is already in the queue (the clock starts when the consumer sees it there)
and no copy of the producer's runs beside it.  The consumer reads the first
and last element of what it got, as any reader would.  Medians and 90th
percentiles in microseconds; the lease's should not grow with the size, the
copy's grows with it.

The control column times a fixed piece of Python and NumPy work (a small
unpickle and an array made over memory of its own) at the same moment, in
place of the receive: the producer's copy of the object has just gone
through the caches the two processes share, so what the consumer runs next
runs cold, more so the larger the object up to the size of the last-level
cache.  The lease's growth below that size is that, not work done per byte.
"Lease again" shows it: the producer writes two objects, the consumer
leases the first and then times a lease of the second, whose code the
first has just run.
"""
import argparse
import multiprocessing
import pickle
import statistics
import time

import numpy as np

import ringipc
from ringipc.bench.report import parse_size


def _producer(q, acks, ready, sizes, count):
    for size in sizes:
        arr = np.arange(size // 8, dtype=np.float64)
        for receive in KINDS.values():
            for _ in range(count):
                if receive is _warm_lease:  # two objects, both written before the consumer looks
                    q.put(arr)
                    q.put(arr)
                    ready.put(None)
                else:
                    q.put(arr)
                acks.get()


def _lease(q, ready=None):
    start = time.perf_counter_ns()
    with q.get_lease() as arr:
        last = arr[-1] - arr[0]
    return time.perf_counter_ns() - start, last


def _copy(q, ready):
    start = time.perf_counter_ns()
    arr = q.get()
    last = arr[-1] - arr[0]
    return time.perf_counter_ns() - start, last


_SMALL, _OWN = pickle.dumps(("<f8", (8,), "C")), bytearray(64)


def _control(q, ready):
    """The fixed work, timed; then the object, untimed."""
    start = time.perf_counter_ns()
    dtype, shape, order = pickle.loads(_SMALL)
    arr = np.ndarray(shape, np.dtype(dtype), buffer=_OWN, order=order)
    arr[-1] - arr[0]
    took = time.perf_counter_ns() - start
    with q.get_lease() as arr:
        return took, arr[-1] - arr[0]


def _warm_lease(q, ready):
    """The second of two leases taken one after the other, once the producer
    has written both objects: the first runs the code the second times."""
    ready.get()
    with q.get_lease() as arr:
        arr[-1] - arr[0]
    return _lease(q)


KINDS = {"lease": _lease, "get()": _copy, "control": _control, "lease again": _warm_lease}


def _timed_receives(q, acks, ready, size, count, receive):
    times = []
    for _ in range(count):
        while q.empty():  # the clock starts once the object is there
            pass
        took, last = receive(q, ready)
        if last != size // 8 - 1:
            raise SystemExit(f"wrong array received: last minus first element {last}")
        times.append(took / 1e3)
        acks.put(None)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64K,1M,4M,16M,64M,256M")
    parser.add_argument("--count", type=int, default=15, help="receives per size and kind")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    q, acks, ready = ringipc.Queue(), ringipc.SimpleQueue(), ringipc.SimpleQueue()
    proc = multiprocessing.get_context("fork").Process(target=_producer, args=(q, acks, ready, sizes, args.count))
    proc.start()
    print(f"{'size':>8}" + "".join(f"  {kind + ' p50':>13} {'p90':>9}" for kind in KINDS) + "  (us)")
    for size in sizes:
        cells = [_timed_receives(q, acks, ready, size, args.count, receive) for receive in KINDS.values()]
        label = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"
        print(f"{label:>8}" + "".join(f"  {p50:13.1f} {p90:9.1f}" for p50, p90 in cells), flush=True)
    proc.join()
    q.close()
    q.join_thread()


if __name__ == "__main__":
    main()
