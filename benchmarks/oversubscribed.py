"""The ring when processes outnumber CPUs: 64-byte messages, fixed counts.

    python benchmarks/oversubscribed.py                 # pinned: producers CPU 0, consumers CPU 1
    taskset -c 0 python benchmarks/oversubscribed.py    # every process on one CPU

Rows: 2 producers x 2 consumers on an MPMC ring (single calls), and 1 x 1 on
an SPSC ring with single calls and with the batch calls.  Prints msg/s and
the context switches the children made (a wake-up per message shows as one
or two per message).  Every message is counted; a loss fails the run.  The
machine's load swings absolute numbers: compare builds by running this
alternately with each on PYTHONPATH, several rounds.
"""
import multiprocessing
import os
import resource
import sys
import time

from ringipc import Ring

COUNT = int(os.environ.get("COUNT", "320000"))  # per producer; a multiple of 64
MESSAGE = b"x" * 64
STOP = b"S"
BATCH = 64


def _pin(cpu):
    if len(os.sched_getaffinity(0)) > 1 and os.environ.get("PIN", "1") == "1":
        os.sched_setaffinity(0, {cpu})


def _produce(ring, batch):
    _pin(0)
    if batch:
        messages = [MESSAGE] * BATCH
        for _ in range(COUNT // BATCH):
            ring.send_bytes_many(messages)
    else:
        send = ring.send_bytes
        for _ in range(COUNT):
            send(MESSAGE)


def _consume(ring, producers, batch, results):
    _pin(1)
    got = stops = 0
    while stops < producers:
        for message in ring.recv_bytes_many(BATCH) if batch else (ring.recv_bytes(),):
            if message == STOP:
                stops += 1
            else:
                got += 1
    results.put(got)


def run(kind, producers, consumers, batch):
    ctx = multiprocessing.get_context("fork")
    ring = Ring(1 << 20, kind=kind)
    results = ctx.Queue()
    readers = [ctx.Process(target=_consume, args=(ring, producers, batch, results)) for _ in range(consumers)]
    for p in readers:
        p.start()
    t0 = time.perf_counter()
    writers = [ctx.Process(target=_produce, args=(ring, batch)) for _ in range(producers)]
    for p in writers:
        p.start()
    for p in writers:
        p.join()
    for _ in range(producers * consumers):  # each consumer stops at its producers-th marker
        ring.send_bytes(STOP)
    got = sum(results.get() for _ in readers)
    for p in readers:
        p.join()
    seconds = time.perf_counter() - t0
    ring.close()
    if got != producers * COUNT:
        raise SystemExit(f"{kind} {producers}x{consumers}: {got} of {producers * COUNT} messages arrived")
    return producers * COUNT / seconds


ROWS = {
    "mpmc-2x2": ("mpmc", 2, 2, False),
    "spsc": ("spsc", 1, 1, False),
    "spsc-many": ("spsc", 1, 1, True),
}


def main(names):
    out = []
    for name in names or list(ROWS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        rate = run(*ROWS[name])
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        switches = (after.ru_nvcsw - before.ru_nvcsw) + (after.ru_nivcsw - before.ru_nivcsw)
        out.append(f"{name} {rate / 1e6:.2f} M/s ({switches} cs)")
    print("  ".join(out))


if __name__ == "__main__":
    main(sys.argv[1:])
