"""Run under strace by tests/test_topic_readiness.py: `count` 64 B messages
published to a topic whose subscriber holds a doorbell, unarmed (mode
"installed"), armed once (mode "armed"), or none at all (mode "none").  One
process publishes and reads, so nothing ever sleeps: every sendto or shared
futex call strace sees is the topic's."""
import sys

from ringipc.core.doorbell import Doorbell
from ringipc.topic import Topic


def main(mode, count):
    topic = Topic(capacity=1 << 16)
    sub = topic.subscribe()
    pub = topic.publisher()
    bell = Doorbell(sub) if mode != "none" else None
    if mode == "armed":
        assert not bell.arm()
    payload = b"x" * 64
    for _ in range(count):
        pub.send_bytes(payload)
        sub.recv_bytes()
    if bell is not None:
        bell.close()
    topic.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
