"""Cross-process delivery of ringipc.Topic: every subscriber receives every
message exactly once, in one publish order shared by all subscribers
(lossless); drop-oldest and latest-value subscribers receive an increasing
subsequence, intact, and account for every gap in ``missed``.

Messages carry (publisher, sequence, crc32 of payload) (tests/ringcheck.py) and
have variable sizes.  Message counts scale with RINGIPC_STRESS_SCALE; at scale
1 the lossless matrix publishes 10^6 messages and delivers 2.8 * 10^6.
"""
import multiprocessing as mp
import zlib

import pytest

import ringcheck
from _proc_support import reap
from _segment_poke import unique_name
from ringipc import Topic

MAX_SIZE = 300


def _subscriber(name, ready, out, publishers):
    topic = Topic.attach(name)
    sub = topic.subscribe()
    ready.put(True)
    tally = ringcheck.Tally()
    chain = 0  # crc of (publisher, sequence) in the order received: equal for all subscribers
    stops = received = 0
    while stops < publishers:
        message = sub.recv_bytes(timeout=120)
        received += 1
        if not tally.add(message):
            stops += 1
        chain = zlib.crc32(message[:12], chain)
    out.put((tally.summary(), chain, sub.missed, received, sub.seq))


def _publisher(name, publisher_id, count):
    topic = Topic.attach(name)
    pub = topic.publisher()
    for seq in range(count):
        pub.send_bytes(ringcheck.make_message(publisher_id, seq, MAX_SIZE), timeout=120)
    pub.send_bytes(ringcheck.stop_message(), timeout=120)


def _run(method, policy, publishers, subscribers, count, capacity):
    ctx = mp.get_context(method)
    with Topic(name=unique_name(), capacity=capacity, policy=policy) as topic:
        ready, out = ctx.Queue(), ctx.Queue()
        subs = [ctx.Process(target=_subscriber, args=(topic.name, ready, out, publishers))
                for _ in range(subscribers)]
        for p in subs:
            p.start()
        try:
            for _ in subs:  # every subscriber has joined before anything is published
                ready.get(timeout=120)
            pubs = [ctx.Process(target=_publisher, args=(topic.name, i, count)) for i in range(publishers)]
            for p in pubs:
                p.start()
            results = [out.get(timeout=600) for _ in subs]
            for p in pubs + subs:
                reap(p, 60)
                assert p.exitcode == 0
        finally:
            for p in subs:
                reap(p, 1)
    return results


LOSSLESS = [
    # (start method, publishers, subscribers, messages per publisher)
    ("fork", 1, 1, 400_000),
    ("fork", 1, 4, 250_000),
    ("spawn", 2, 4, 175_000),
]


@pytest.mark.parametrize("method,publishers,subscribers,count", LOSSLESS,
                         ids=[f"{m}-{p}to{s}" for m, p, s, _ in LOSSLESS])
def test_lossless_exactly_once_in_one_order(method, publishers, subscribers, count):
    count = ringcheck.scaled(count)
    results = _run(method, "lossless", publishers, subscribers, count, capacity=64 << 10)
    expected = {p: ringcheck.expected_for(count) for p in range(publishers)}
    chains = set()
    for summary, chain, missed, received, last_seq in results:
        assert summary == expected
        assert missed == 0 and received == publishers * (count + 1)
        assert last_seq == publishers * (count + 1) - 1
        chains.add(chain)
    assert len(chains) == 1, "subscribers saw different publish orders"


@pytest.mark.parametrize("policy", ["drop-oldest", "latest"])
def test_lossy_policies_deliver_intact_increasing_messages(policy):
    count = ringcheck.scaled(100_000)
    # A small ring: subscribers are lapped often.
    results = _run("fork", policy, 1, 4, count, capacity=4096)
    for summary, chain, missed, received, last_seq in results:
        # Tally checked order and checksums; the stop message, newest of all,
        # is always received; every message is either received or missed.
        assert received + missed == count + 1
        assert last_seq == count
        assert summary.get(0, (0, 0, 0))[0] == received - 1
