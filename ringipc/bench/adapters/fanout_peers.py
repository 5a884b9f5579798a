"""Third-party publish/subscribe peers of the fan-out scenarios (optional:
each runs only when its package is installed, ``ringipc[bench]``).

Every fan-out run verifies that each subscriber got the whole stream, so a
peer is measured in a lossless configuration: its publisher waits (or
retries) while a subscriber's buffer is full instead of dropping.
"""
import os
import time
from typing import Any, Callable, Tuple

from ringipc.bench.adapters.base import Channel
from ringipc.bench.adapters.fanout import FanoutFacility
from ringipc.bench.adapters.framing import LARGE
from ringipc.bench.adapters.iceoryx import _PATIENCE, Iceoryx2


class Iceoryx2Fanout(FanoutFacility, Iceoryx2):
    """iceoryx2 publish/subscribe with N subscribers: one sample, loaned and
    written once, is delivered to every subscriber (zero-copy); the publisher
    retries until every subscriber's buffer has room.  Subscribers poll, as
    in the point-to-point row (ringipc/bench/adapters/iceoryx.py)."""

    name = "iceoryx2 pub/sub"

    def supports(self, size: int, producers: int = 1, consumers: int = 1) -> Tuple[bool, str]:
        return True, ""

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        self._size = size  # before the service exists: its settings depend on it (depth)
        channel = super().setup(size, producers, consumers)
        # The publisher waits for all of its subscribers before the first round.
        name = channel.producer_ends[0]
        return Channel([(name, consumers)], [name] * consumers, channel.close)

    # Read-only properties over Iceoryx2's class attributes: computed from the message size here.
    @property
    def depth(self) -> int:  # type: ignore[override]
        # Samples each subscriber may hold unread: the publisher's pool is
        # depth x subscribers x the message size, so big messages get fewer.
        return 64 if self.__dict__.get("_size", 0) < LARGE else 8

    @property
    def history(self) -> int:  # type: ignore[override]
        # A subscriber whose connection the publisher has not picked up yet
        # would miss the first samples; history hands them over on connecting.
        return self.depth

    def open_sender(self, end: Any, size: int) -> Callable[[Any], Any]:
        name, subscribers = end
        self._size = size
        self._subscribers = subscribers
        return super().open_sender(name, size)

    def open_receiver(self, name: str, size: int) -> Callable[[], Any]:
        self._size = size
        service = self._service(name)
        sub = service.subscriber_builder().buffer_size(self.depth).create()
        self.__dict__.setdefault("_ports", []).append(sub)
        receive = sub.receive
        yield_cpu = os.sched_yield

        def recv() -> bytes:
            # Polled, but yielding between empty polls: four subscribers share
            # one CPU here, and a pure spin would take it from the others.
            while True:
                sample = receive()
                if sample is not None:
                    break
                yield_cpu()
            data = bytes(sample.payload().as_memory_view())
            sample.delete()
            return data

        return recv

    def connected(self) -> None:
        deadline = time.monotonic() + _PATIENCE
        for service, pub in self.__dict__.get("_waiting", []):
            while service.dynamic_config.number_of_subscribers < self._subscribers:
                if time.monotonic() > deadline:
                    raise TimeoutError("not every iceoryx2 subscriber appeared")
                time.sleep(0.001)
            pub.update_connections()


FACILITIES = [Iceoryx2Fanout()]
