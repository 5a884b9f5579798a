"""Torn-read hunting: readers verify a checksum over every message they get
while publishers overwrite a small topic at full speed.  Latest-value readers
(and drop-oldest ones) must never return a torn message; the counters show
that overwrites during copies did happen and were caught."""
import multiprocessing as mp
import random
import struct
import zlib

import pytest

import ringcheck
from _proc_support import reap
from _segment_poke import unique_name
from ringipc import MessageOverwritten, Topic

ctx = mp.get_context("fork")
HEAD = struct.Struct("<IQI")  # publisher, counter, crc32 of the body
_BLOCK = bytes(random.Random(7).randbytes(1 << 16))


def _writer(name, ident, stop, max_size):
    pub = Topic.attach(name).publisher()
    rng = random.Random(ident)
    n = 0
    while not stop.is_set():
        for _ in range(500):
            size = rng.randrange(0, max_size - HEAD.size + 1)
            start = rng.randrange(len(_BLOCK) - size)
            body = _BLOCK[start:start + size]
            pub.send_bytes(HEAD.pack(ident, n, zlib.crc32(body)) + body, timeout=60)
            n += 1


def _reader(name, reads, ready, out, max_size):
    sub = Topic.attach(name).subscribe(history=1)
    ready.put(True)
    torn = overwritten_views = 0
    buf = bytearray(max_size)
    last = {}
    for i in range(reads):
        kind = i % 8
        if kind < 6:
            m = sub.recv_bytes(timeout=60)
        elif kind == 6:
            m = bytes(buf[:sub.recv_bytes_into(buf, timeout=60)])
        else:
            view = sub.recv_view(timeout=60)
            m = bytes(view)  # copied while publishers may overwrite it ...
            try:
                view.release()  # ... which release() then reports
            except MessageOverwritten:
                overwritten_views += 1
                continue
        ident, n, crc = HEAD.unpack_from(m)
        if zlib.crc32(m[HEAD.size:]) != crc:
            torn += 1
        if n <= last.get(ident, -1):
            torn += 1  # an older value after a newer one
        last[ident] = n
    out.put((torn, sub._torn_copies, overwritten_views, sub.missed))


@pytest.mark.parametrize("policy,reads", [("latest", 500_000), ("drop-oldest", 150_000)])
def test_no_torn_reads_while_publishers_overwrite(policy, reads):
    reads = ringcheck.scaled(reads)
    capacity = 2048  # 32 cells: a message of up to 1 KiB is overwritten two publishes later
    max_size = capacity // 2
    with Topic(name=unique_name(), capacity=capacity, policy=policy) as t:
        stop, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
        readers = [ctx.Process(target=_reader, args=(t.name, reads, ready, out, max_size)) for _ in range(2)]
        for p in readers:
            p.start()
        for _ in readers:
            ready.get(timeout=60)
        writers = [ctx.Process(target=_writer, args=(t.name, i, stop, max_size)) for i in range(2)]
        for p in writers:
            p.start()
        try:
            results = [out.get(timeout=600) for _ in readers]
        finally:
            stop.set()
            for p in readers + writers:
                reap(p, 30)
    torn = sum(r[0] for r in results)
    caught = sum(r[1] for r in results)
    print(f"\n{policy}: {2 * reads} reads, {torn} torn, {caught} overwritten copies caught and retried, "
          f"{sum(r[2] for r in results)} overwritten views reported, {sum(r[3] for r in results)} missed")
    assert torn == 0
    assert all(p.exitcode == 0 for p in readers)
