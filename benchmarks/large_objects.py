"""Large objects, 1 producer process -> 1 consumer: GB/s of bytes objects and
NumPy arrays of 1 MiB, 16 MiB and 256 MiB through ringipc.Queue, ringipc.Pipe,
an shm:// channel, multiprocessing.Queue, faster-fifo, pyzmq (PUSH/PULL over
ipc://, copy=False both ways) and the raw ring (send_bytes/recv_bytes_into of
the bytes, the ceiling), all in one run so their ratios compare; then
single-thread memcpy bandwidth, and the time of a zero-copy receive
(Queue.get_lease) by size:

    python benchmarks/large_objects.py [--sizes 1M,16M,256M] [--total 512M]

Each row: the producer sends two objects untimed (pools, page faults), then
`total / size` objects (at least 3); the consumer times from its second
object to its last.  Peers that are not installed are reported as such.
"""
import argparse
import multiprocessing
import os
import tempfile
import time

import numpy as np

import ringipc
from ringipc.bench.report import parse_size
from ringipc.core._ring import Ring

WARM = 2


def _objects(kind, size):
    if kind == "bytes":
        return bytes(size)
    return np.ones(size // 8)


def _drain(get, count):
    get()
    get()
    start = time.perf_counter()
    for _ in range(count):
        get()
    return time.perf_counter() - start


# -- facilities: make(size) -> (put_in_child, get, close) -----------------------------
def _queue(size, kind):
    q = ringipc.Queue()
    return q.put, q.get, q.close


def _pipe(size, kind):
    a, b = ringipc.Pipe()
    return b.send, a.recv, lambda: (a.close(), b.close())


def _mp_queue(size, kind):
    q = multiprocessing.get_context("fork").Queue()
    return q.put, q.get, q.close


def _faster_fifo(size, kind):
    import faster_fifo
    q = faster_fifo.Queue(max_size_bytes=3 * size + (1 << 20))
    return q.put, lambda: q.get(timeout=60), q.close


def _ring(size, kind):
    ring = Ring(max(4 * size, 1 << 20), "spsc")
    out = bytearray(size)

    def put(obj):
        ring.send_bytes(obj if kind == "bytes" else memoryview(obj).cast("B"))
    return put, lambda: ring.recv_bytes_into(out), ring.close


FACILITIES = {"ringipc.Queue": _queue, "ringipc.Pipe": _pipe, "mp.Queue": _mp_queue,
              "faster-fifo": _faster_fifo, "raw ring": _ring}


def _child(put, obj, count):
    for _ in range(WARM + count):
        put(obj)


def run_forked(name, make, kind, size, count):
    put, get, close = make(size, kind)
    obj = _objects(kind, size)
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(put, obj, count))
    proc.start()
    try:
        return _drain(get, count)
    finally:
        proc.join()
        close()


def _shm_child(address, obj, count):
    with ringipc.connect(address, timeout=30, max_message_size=1 << 30) as ch:
        for _ in range(WARM + count):
            ch.send(obj)
        ch.recv()  # the consumer's all-done: do not close under it


def run_shm(kind, size, count):
    with ringipc.listen(f"shm://bench-large-{os.getpid()}", max_message_size=1 << 30) as lst:
        proc = multiprocessing.get_context("fork").Process(
            target=_shm_child, args=(lst.address, _objects(kind, size), count))
        proc.start()
        with lst.accept(timeout=30) as ch:
            took = _drain(lambda: ch.recv(timeout=60), count)
            ch.send("done")
        proc.join()
    return took


def _zmq_child(address, kind, size, count):
    import zmq
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.connect(address)
    obj = _objects(kind, size)
    for _ in range(WARM + count):
        sock.send(obj if kind == "bytes" else memoryview(obj).cast("B"), copy=False)
    sock.close(linger=-1)
    ctx.term()


def run_zmq(kind, size, count):
    import zmq
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    with tempfile.TemporaryDirectory() as tmp:
        address = f"ipc://{tmp}/large"
        sock.bind(address)
        proc = multiprocessing.get_context("fork").Process(target=_zmq_child, args=(address, kind, size, count))
        proc.start()

        def get():
            frame = sock.recv(copy=False)
            return frame.buffer if kind == "bytes" else np.frombuffer(frame.buffer)
        took = _drain(get, count)
        proc.join()
    sock.close()
    ctx.term()
    return took


def memcpy_gbps(size):
    src, dst = np.ones(size // 8), np.empty(size // 8)
    np.copyto(dst, src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(5))
    return size / best / 1e9


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def lease_us(size):
    """Microseconds of a get_lease() + release() of an array already in the
    queue (best of 5), against a copying get()."""
    q = ringipc.Queue()
    arr = np.ones(size // 8)
    out = {}
    for label, get in (("lease", lambda: q.get_lease().release()), ("get", q.get)):
        times = []
        for _ in range(5):
            q.put(arr)
            times.append(_timed(get))
        out[label] = min(times) * 1e6
    q.close()
    q.join_thread()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1M,16M,256M")
    parser.add_argument("--total", default="512M", help="bytes per timed row")
    parser.add_argument("--kinds", default="numpy,bytes")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    total = parse_size(args.total)
    for size in sizes:
        count = max(3, total // size)
        for kind in args.kinds.split(","):
            rows = {}
            for name in list(FACILITIES) + ["shm:// channel", "pyzmq copy=False"]:
                try:
                    if name == "shm:// channel":
                        took = run_shm(kind, size, count)
                    elif name == "pyzmq copy=False":
                        took = run_zmq(kind, size, count)
                    else:
                        took = run_forked(name, FACILITIES[name], kind, size, count)
                except ImportError as exc:
                    print(f"{size >> 20:>4} MiB {kind:<6} {name:<18} not installed ({exc.name})")
                    continue
                rows[name] = size * count / took / 1e9
            ring = rows.get("raw ring")
            for name, rate in rows.items():
                ratio = f"{rate / ring:6.1%} of ring" if ring else ""
                print(f"{size >> 20:>4} MiB {kind:<6} {name:<18} {rate:7.2f} GB/s  {ratio}", flush=True)
        print(f"{size >> 20:>4} MiB memcpy (one thread) {memcpy_gbps(size):7.2f} GB/s", flush=True)
    for size in sizes if hasattr(ringipc.Queue, "get_lease") else ():
        t = lease_us(size)
        print(f"{size >> 20:>4} MiB Queue.get_lease+release {t['lease']:9.1f} us   get() {t['get']:9.1f} us", flush=True)


if __name__ == "__main__":
    main()
