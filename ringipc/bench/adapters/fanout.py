"""Fan-out facilities: one producer, every consumer receives every message.

They run only the ``fanout-N`` scenarios (ringipc/bench/fanout.py).  The
producer sends one stop marker, which every subscriber sees; each consumer's
digest must equal the whole stream's, and the rate counts every delivery
(messages x subscribers per second).
"""
import os
import tempfile
import uuid
from typing import Any, Callable, Tuple

from ringipc.bench.adapters.base import Channel, Facility, into_receiver
from ringipc.bench.adapters.framing import LARGE
from ringipc.bench.adapters.peers import _have
from ringipc.bench.adapters.ringipc_core import _api, _capacity
from ringipc.bench.fanout import FANOUT_BASELINE


class FanoutFacility(Facility):
    fanout = True
    mpmc = True  # several consumers share the channel

    def producer(self, send: Callable[..., Any], n: int, size: int, pid: int = 0, consumers: int = 1) -> int:
        # One stop marker reaches every subscriber.
        return super().producer(send, n, size, pid, consumers=1)


class TopicFanout(FanoutFacility):
    """ringipc.Topic, lossless: the publisher waits for the slowest subscriber."""

    name = "ringipc.Topic"
    copies_on_send = True
    policy = "lossless"

    def available(self) -> Tuple[bool, str]:
        return _api("Topic")

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        from ringipc import Topic

        # Anonymous (memfd): the topic object itself goes to the children,
        # which receive its descriptor.
        topic = Topic(capacity=_capacity(size), policy=self.policy)
        return Channel([topic] * producers, [topic] * consumers, topic.close)

    def open_sender(self, topic: Any, size: int) -> Callable[[Any], Any]:
        self._pub = topic.publisher()
        return self._pub.send_bytes

    def open_receiver(self, topic: Any, size: int) -> Callable[[], Any]:
        self._sub = topic.subscribe()
        if size >= LARGE:
            return into_receiver(self._sub.recv_bytes_into, size)
        return self._sub.recv_bytes

    def close_end(self, end: Any) -> None:
        for attr in ("_pub", "_sub"):
            handle = self.__dict__.pop(attr, None)
            if handle is not None:
                handle.close()


class _OnePerSubscriber(FanoutFacility):
    """Fan-out by hand: one point-to-point channel per subscriber, the
    producer sending every message into each."""

    def _one(self, size: int) -> Any:
        raise NotImplementedError

    def _send_of(self, end: Any) -> Callable[[Any], Any]:
        raise NotImplementedError

    def _let_go(self, end: Any) -> None:
        end.close()

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        ends = [self._one(size) for _ in range(consumers)]

        def close() -> None:
            for end in ends:
                end.close()

        return Channel([tuple(ends)] * producers, ends, close)

    def open_sender(self, ends: Any, size: int) -> Callable[[Any], Any]:
        sends = [self._send_of(end) for end in ends]

        def send(msg: Any) -> None:
            for send_one in sends:
                send_one(msg)

        return send

    def close_end(self, end: Any) -> None:
        for one in end if isinstance(end, tuple) else (end,):
            self._let_go(one)


class RingPerSubscriber(_OnePerSubscriber):
    """The raw ring doing the fan-out: one SPSC ring per subscriber, the
    publisher sending every message into each.  What Topic's per-subscriber
    rate is measured against (at 1 -> 1 it is the plain 1 -> 1 ring)."""

    name = "ringipc.Rings-per-sub"
    copies_on_send = True

    def available(self) -> Tuple[bool, str]:
        return _api("Ring")

    def _one(self, size: int) -> Any:
        from ringipc import Ring

        # Anonymous: the rings themselves go to the children (their descriptors).
        return Ring(capacity=_capacity(size), kind="spsc")

    def _send_of(self, ring: Any) -> Callable[[Any], Any]:
        return ring.send_bytes

    def open_receiver(self, ring: Any, size: int) -> Callable[[], Any]:
        if size >= LARGE:
            return into_receiver(ring.recv_bytes_into, size)
        return ring.recv_bytes


class MpQueuePerSubscriber(_OnePerSubscriber):
    """The baseline: multiprocessing.Queue, one per subscriber, the producer putting each message in every one."""

    name = FANOUT_BASELINE

    def _one(self, size: int) -> Any:
        import multiprocessing

        return multiprocessing.get_context("spawn").Queue()

    def _send_of(self, q: Any) -> Callable[[Any], Any]:
        return q.put

    def open_receiver(self, q: Any, size: int) -> Callable[[], Any]:
        return q.get

    def _let_go(self, q: Any) -> None:
        q.close()
        q.join_thread()


class ZmqPubSub(FanoutFacility):
    """XPUB/SUB over ipc://.  The publisher waits for every subscription
    before the first round (else the first messages go nowhere), and sets
    XPUB_NODROP so a full pipe blocks instead of dropping, as a lossless
    topic does."""

    name = "zmq PUB/SUB"

    def available(self) -> Tuple[bool, str]:
        return _have("zmq")

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        path = os.path.join(tempfile.gettempdir(), f"ringipc-bench-{uuid.uuid4().hex[:12]}.ipc")

        def close() -> None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

        return Channel([("pub", path, consumers)] * producers, [("sub", path, 0)] * consumers, close)

    def _hwm(self, size: int) -> int:
        return 1000 if size < LARGE else 16

    def open_sender(self, end: Any, size: int) -> Callable[[Any], Any]:
        import zmq

        _, path, subscribers = end
        sock: Any = zmq.Context.instance().socket(zmq.XPUB)  # Any: pyzmq's types only where it is installed
        sock.setsockopt(zmq.SNDHWM, self._hwm(size))
        sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        sock.setsockopt(zmq.XPUB_NODROP, 1)
        sock.bind(f"ipc://{path}")
        self._pub = (sock, subscribers)
        return sock.send

    def open_receiver(self, end: Any, size: int) -> Callable[[], Any]:
        import zmq

        _, path, _ = end
        sock: Any = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, self._hwm(size))
        sock.connect(f"ipc://{path}")
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        self._sub = sock
        return sock.recv

    def connected(self) -> None:
        pub = self.__dict__.get("_pub")
        if pub is None:
            return
        sock, subscribers = pub
        for _ in range(subscribers):  # one subscription message per subscriber
            if not sock.poll(20_000):
                raise TimeoutError("zmq subscribers did not connect")
            sock.recv()

    def close_end(self, end: Any) -> None:
        import zmq

        for attr in ("_pub", "_sub"):
            held = self.__dict__.pop(attr, None)
            if held is not None:
                sock = held[0] if isinstance(held, tuple) else held
                sock.close(linger=-1)
        zmq.Context.instance().term()


FACILITIES = [TopicFanout(), RingPerSubscriber(), ZmqPubSub(), MpQueuePerSubscriber()]
