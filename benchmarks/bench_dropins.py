"""Drop-ins against multiprocessing and faster-fifo: ``python benchmarks/bench_dropins.py``.

Three measurements, each a producer process and a consumer process (fork),
repeated ROUNDS times with the implementations interleaved; the best round
of each is reported with the ratio the issue asks for:

* Queue put/get of small objects (a 64-byte bytes object): objects per second.
* put_many/get_many in batches of 100 small objects: ringipc vs faster-fifo.
* Pipe round trip (send_bytes/recv_bytes of 64 bytes, echoed): microseconds.

The consumer checks every object it gets, so nothing is counted unread.
"""
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ringipc import connection as ring_connection  # noqa: E402
from ringipc import queues as ring_queues  # noqa: E402

try:
    import faster_fifo
except ImportError:
    faster_fifo = None

ctx = multiprocessing.get_context("fork")
N_SINGLE = 200_000
N_MANY = 1_000_000
BATCH = 100
N_ROUNDTRIP = 20_000
ROUNDS = 3
SMALL = b"s" * 64


def _pin(cpu):
    try:
        os.sched_setaffinity(0, {cpu % os.cpu_count()})
    except (AttributeError, OSError):
        pass


def _put_single(q, n):
    _pin(1)
    put = q.put
    for _ in range(n):
        put(SMALL)


def _put_many(q, n, batch, kind):
    _pin(1)
    chunk = [SMALL] * batch
    put_many = q.put_many
    for _ in range(n // batch):
        put_many(chunk)
    if kind == "ringipc":
        q.close()
        q.join_thread()


def _echo(conn, n):
    _pin(1)
    recv, send = conn.recv_bytes, conn.send_bytes
    for _ in range(n):
        send(recv())


def queue_single(make):
    q = make()
    p = ctx.Process(target=_put_single, args=(q, N_SINGLE))
    _pin(0)
    start = time.perf_counter()
    p.start()
    get = q.get
    for _ in range(N_SINGLE):
        if get() != SMALL:
            raise AssertionError("wrong object")
    elapsed = time.perf_counter() - start
    p.join()
    return N_SINGLE / elapsed


def queue_many(kind):
    if kind == "ringipc":
        q = ring_queues.Queue()
        get_many = lambda: q.get_many(max_messages=BATCH)  # noqa: E731
    else:
        q = faster_fifo.Queue(1 << 24)
        get_many = lambda: q.get_many(max_messages_to_get=BATCH)  # noqa: E731
    p = ctx.Process(target=_put_many, args=(q, N_MANY, BATCH, kind))
    _pin(0)
    start = time.perf_counter()
    p.start()
    got = 0
    while got < N_MANY:
        items = get_many()
        if items[-1] != SMALL:
            raise AssertionError("wrong object")
        got += len(items)
    elapsed = time.perf_counter() - start
    p.join()
    return N_MANY / elapsed


def pipe_roundtrip(make):
    a, b = make()
    p = ctx.Process(target=_echo, args=(b, N_ROUNDTRIP))
    p.start()
    _pin(0)
    a.send_bytes(SMALL)  # warm-up: the child is running
    a.recv_bytes()
    start = time.perf_counter()
    for _ in range(N_ROUNDTRIP - 1):
        a.send_bytes(SMALL)
        if a.recv_bytes() != SMALL:
            raise AssertionError("wrong echo")
    elapsed = time.perf_counter() - start
    p.join()
    return elapsed / (N_ROUNDTRIP - 1) * 1e6


def main():
    best = {}

    def record(key, value, higher_is_better=True):
        old = best.get(key)
        if old is None or (value > old if higher_is_better else value < old):
            best[key] = value

    for _ in range(ROUNDS):
        record("mp.Queue put/get", queue_single(ctx.Queue))
        record("ringipc.Queue put/get", queue_single(ring_queues.Queue))
        if faster_fifo is not None:
            record("faster_fifo put_many/get_many", queue_many("faster_fifo"))
        record("ringipc put_many/get_many", queue_many("ringipc"))
        record("mp.Pipe round trip us", pipe_roundtrip(ctx.Pipe), False)
        record("ringipc.Pipe round trip us", pipe_roundtrip(ring_connection.Pipe), False)
    for key, value in best.items():
        unit = "us" if key.endswith("us") else "objects/s"
        print(f"{key:34s} {value:14,.1f} {unit}")
    print(f"Queue speed-up over multiprocessing: {best['ringipc.Queue put/get'] / best['mp.Queue put/get']:.1f}x")
    if faster_fifo is not None:
        ratio = best["ringipc put_many/get_many"] / best["faster_fifo put_many/get_many"]
        print(f"put_many/get_many speed-up over faster-fifo: {ratio:.1f}x")
    ratio = best["ringipc.Pipe round trip us"] / best["mp.Pipe round trip us"]
    print(f"Pipe round trip, ringipc / multiprocessing: {ratio:.3f}")


if __name__ == "__main__":
    main()
