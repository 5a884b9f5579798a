"""Run under strace by tests/test_ring_bell.py and tests/test_topic_readiness.py:
`count` 64 B messages through a ring (or published to a topic) whose reader
(subscriber) holds a doorbell, unarmed (mode "installed"), armed once (mode
"armed"), or none at all (mode "none").  One process sends and receives, so
nothing ever sleeps: every sendto or shared futex call strace sees is the
doorbell's or the ring's."""
import sys

from ringipc.core._ring import Ring
from ringipc.core.doorbell import Doorbell
from ringipc.topic import Topic


def _ring():
    ring = Ring(1 << 20)
    return ring, ring.send_bytes, ring.recv_bytes, ring.close


def _topic():
    topic = Topic(capacity=1 << 16)
    sub = topic.subscribe()
    return sub, topic.publisher().send_bytes, sub.recv_bytes, topic.close


def main(kind, mode, count):
    watched, send, recv, close = {"ring": _ring, "topic": _topic}[kind]()
    bell = Doorbell(watched) if mode != "none" else None
    if mode == "armed":
        assert not bell.arm()
    payload = b"x" * 64
    for _ in range(count):
        send(payload)
        recv()
    if bell is not None:
        bell.close()
    close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
