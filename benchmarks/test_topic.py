"""Topics read from Python, in one process: what a latest-value read costs.

Each round publishes one 64-byte value, then 100 subscribers each read it
(every read finds a new value, as a reader of state polling it would); the
publish-only row is the same round without the reads, so the difference
divided by 100 is one read.  The ring row (100 sends and receives of 64 B
through an SPSC ring) is the peer in the same run.  Goal (issue 15): a
latest-value read of a 64 B value at most 200 ns.

    python -m pytest benchmarks/test_topic.py --benchmark-group-by=group
"""
import pytest

import ringipc
from ringipc import Topic

READERS = 100
VALUE = b"v" * 64


@pytest.fixture
def latest():
    with Topic(capacity=1 << 16, policy="latest") as topic:
        pub = topic.publisher()
        reads = [topic.subscribe().recv_bytes for _ in range(READERS)]
        yield pub.send_bytes, reads


def test_latest_value_publish_and_100_reads(benchmark, latest):
    send, reads = latest
    benchmark.group = "latest-value 64 B (one publish, 100 reads)"

    def round_():
        send(VALUE)
        for read in reads:
            read()

    benchmark(round_)


def test_latest_value_publish_only(benchmark, latest):
    send, _ = latest
    benchmark.group = "latest-value 64 B (one publish, 100 reads)"
    benchmark(send, VALUE)


def test_ring_100_sends_and_receives(benchmark):
    ring = ringipc.Ring(capacity=1 << 16)
    benchmark.group = "latest-value 64 B (one publish, 100 reads)"

    def round_():
        for _ in range(READERS):
            ring.send_bytes(VALUE)
            ring.recv_bytes()

    try:
        benchmark(round_)
    finally:
        ring.close()
