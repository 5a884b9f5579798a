"""Shared-memory queue libraries from PyPI as peers (``pip install 'ringipc[bench-peers]'``).

Each is used as its own documentation shows, and its rows carry what a user
must know beside the number (docs/benchmarks.md says it too):

* ``cloudtoid-interprocess``: a competing-consumers byte queue; ``try_send``
  does not block, so a full queue makes the producer poll (yielding the CPU);
  the consumer blocks in ``receive``.  The queue lives only while an endpoint
  is open: the parent keeps one for the channel's lifetime.
* ``slick-queue``: a lock-free ring whose producers never wait for readers
  (a reader that falls a lap behind loses messages) and whose reader polls;
  fixed-size slots.  Lossless only when one message is in flight: round trip only.
* ``kickmsg``: publish/subscribe, lossy when a subscriber's ring overflows
  (it counts what it lost): round trip only; the subscriber blocks on a futex.

Imports happen in ``available`` and in the children, so a missing package only
marks its rows skipped.
"""
import os
import uuid
from typing import Any, Callable, Tuple

from ringipc.bench.adapters.base import Channel, Facility
from ringipc.bench.adapters.peers import _have

_EXTRA = "ringipc[bench-peers]"


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


class CloudtoidQueue(Facility):
    name = "cloudtoid-interprocess"
    mpmc = True
    copies_on_send = True

    def available(self) -> Tuple[bool, str]:
        return _have("cloudtoid_interprocess", _EXTRA)

    @staticmethod
    def capacity(size: int) -> int:
        # Room for a few hundred small messages or four large ones; a multiple of 8 as required.
        return max(1 << 20, 4 * (size + 64)) // 8 * 8

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        from cloudtoid_interprocess import Publisher

        name = _unique("ringipc-bench-")
        # A queue disappears with its last endpoint: hold one until the run is over.
        keeper = Publisher(name, self.capacity(size))
        return Channel([name] * producers, [name] * consumers, keeper.close)

    def _keep(self, end: Any) -> Any:
        self.__dict__.setdefault("_ends", []).append(end)
        return end

    def open_sender(self, name: str, size: int) -> Callable[[Any], Any]:
        from cloudtoid_interprocess import Publisher

        try_send = self._keep(Publisher(name, self.capacity(size))).try_send
        yield_cpu = os.sched_yield

        def send(msg: Any) -> None:
            while not try_send(msg):  # full: the library offers no blocking send
                yield_cpu()

        return send

    def open_receiver(self, name: str, size: int) -> Callable[[], Any]:
        from cloudtoid_interprocess import Subscriber

        receive = self._keep(Subscriber(name, self.capacity(size))).receive
        return lambda: receive(timeout=None)

    def close_end(self, end: Any) -> None:
        for e in self.__dict__.pop("_ends", []):
            e.close()


class SlickQueue(Facility):
    """One SlickQueue per direction, slots of exactly the message size."""

    name = "slick-queue"
    scenarios = ("latency",)  # lossy when a reader falls a lap behind
    depth = 1024  # slots (a power of two)

    def available(self) -> Tuple[bool, str]:
        return _have("slick_queue_py", _EXTRA)

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        from slick_queue_py import SlickQueue as Queue

        q = Queue(name=_unique("rb-slick-"), size=self.depth, element_size=size)

        def close() -> None:
            q.close()
            q.unlink()

        return Channel([q.name], [q.name], close)

    def _open(self, name: str, size: int) -> Any:
        from slick_queue_py import SlickQueue as Queue

        q = Queue(name=name, element_size=size)
        self.__dict__.setdefault("_queues", []).append(q)
        return q

    def open_sender(self, name: str, size: int) -> Callable[[Any], Any]:
        q = self._open(name, size)
        reserve, publish = q.reserve, q.publish

        def send(msg: Any) -> None:
            i = reserve()
            q[i][:len(msg)] = msg
            publish(i)

        return send

    def open_receiver(self, name: str, size: int) -> Callable[[], Any]:
        read = self._open(name, size).read
        cursor = [0]

        def recv() -> Any:
            while True:  # the library's reader polls: it has no way to sleep until data arrives
                data, _, cursor[0] = read(cursor[0])
                if data is not None:
                    return data

        return recv

    def close_end(self, end: Any) -> None:
        for q in self.__dict__.pop("_queues", []):
            q.close()


class Kickmsg(Facility):
    """kickmsg publish/subscribe on one SharedRegion per direction."""

    name = "kickmsg"
    scenarios = ("latency",)  # a subscriber whose ring overflows loses messages
    copies_on_send = False  # send() takes bytes only

    def available(self) -> Tuple[bool, str]:
        return _have("kickmsg", _EXTRA)

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        import kickmsg

        cfg = kickmsg.Config()
        cfg.max_payload_size = max(size, 64)
        # Not "ringipc-...": ringipc's own sweep of leftovers would take it for one of its segments.
        name = "/" + _unique("kickmsg-bench-")
        region = kickmsg.SharedRegion.create(name, kickmsg.ChannelType.PubSub, cfg)
        held = [region]

        def close() -> None:
            held.clear()
            kickmsg.unlink_shm(name)

        return Channel([name], [name], close)

    def _region(self, name: str) -> Any:
        import kickmsg

        region = kickmsg.SharedRegion.open(name)
        self.__dict__.setdefault("_held", []).append(region)
        return region

    def open_sender(self, name: str, size: int) -> Callable[[Any], Any]:
        import kickmsg

        pub = kickmsg.Publisher(self._region(name))
        self._held.append(pub)  # type: ignore[attr-defined]  # made by _region
        return pub.send

    def open_receiver(self, name: str, size: int) -> Callable[[], Any]:
        import kickmsg

        sub = kickmsg.Subscriber(self._region(name))
        self._held.append(sub)  # type: ignore[attr-defined]  # made by _region
        receive = sub.receive

        def recv() -> Any:
            while True:  # blocks on a futex; a timeout only so Ctrl-C gets through
                msg = receive(1.0)
                if msg is not None:
                    return msg

        return recv

    def close_end(self, end: Any) -> None:
        self.__dict__.pop("_held", None)


class SubethaSpsc(Facility):
    """subetha's SpscRing: one writer, one reader, fixed 64-byte slots, in a mapped file."""

    name = "subetha.SpscRing"
    copies_on_send = False  # push() takes bytes only
    depth = 4096  # slots

    def available(self) -> Tuple[bool, str]:
        return _have("subetha", _EXTRA)

    def supports(self, size: int, producers: int = 1, consumers: int = 1) -> Tuple[bool, str]:
        if size > 64:
            return False, "fixed 64-byte slots (larger payloads need its framed Ring)"
        return super().supports(size, producers, consumers)

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        import tempfile

        import subetha

        path = os.path.join(tempfile.gettempdir(), _unique("ringipc-bench-subetha-"))
        held = [subetha.SpscRing(path, self.depth)]

        def close() -> None:
            held.clear()
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

        return Channel([path], [path], close)

    def _ring(self, path: str) -> Any:
        import subetha

        ring = subetha.SpscRing.open(path, self.depth)
        self.__dict__.setdefault("_rings", []).append(ring)
        return ring

    def open_sender(self, path: str, size: int) -> Callable[[Any], Any]:
        push = self._ring(path).push

        def send(msg: Any) -> None:
            while not push(msg):  # full: both ends poll, the ring has no way to sleep
                pass

        return send

    def open_receiver(self, path: str, size: int) -> Callable[[], Any]:
        pop = self._ring(path).pop

        def recv() -> Any:
            while True:
                msg = pop()
                if msg is not None:
                    return msg

        return recv

    def close_end(self, end: Any) -> None:
        self.__dict__.pop("_rings", None)


class Ecal(Facility):
    """eCAL 6 binary publish/subscribe (its default local transport is shared memory).

    Received through the subscriber callback, the binding's only way to
    receive, into a queue the benchmark loop reads.  Publishers do not wait
    for subscribers (a late or slow one misses messages) and finding each
    other takes eCAL's registration a second or two: round trip only.
    """

    name = "ecal"
    scenarios = ("latency",)
    copies_on_send = False

    def available(self) -> Tuple[bool, str]:
        return _have("ecal.nanobind_core", _EXTRA)

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        topic = _unique("ringipc_bench_")
        return Channel([topic], [topic])

    def _core(self) -> Any:
        import ecal.nanobind_core as core

        if not core.is_initialized():
            config = core.Configuration()
            config.logging.provider.console.enable = False  # no log lines over the progress display
            config.logging.provider.udp.enable = False
            core.initialize(config, f"ringipc-bench-{os.getpid()}")
        return core

    def open_sender(self, topic: Any, size: int) -> Callable[[Any], Any]:
        pub = self._core().Publisher(topic)
        self.__dict__.setdefault("_pubs", []).append(pub)
        return pub.send

    def open_receiver(self, topic: Any, size: int) -> Callable[[], Any]:
        import queue

        got: "queue.SimpleQueue[bytes]" = queue.SimpleQueue()
        sub = self._core().Subscriber(topic)
        sub.set_receive_callback(lambda _id, _type, data: got.put(bytes(data.buffer)))
        self.__dict__.setdefault("_subs", []).append(sub)
        return got.get

    def connected(self) -> None:
        import time

        deadline = time.monotonic() + 30.0
        ends = [(p, p.get_subscriber_count) for p in self.__dict__.get("_pubs", [])]
        ends += [(s, s.get_publisher_count) for s in self.__dict__.get("_subs", [])]
        for _, count in ends:
            while count() < 1:
                if time.monotonic() > deadline:
                    raise TimeoutError("eCAL publisher and subscriber did not find each other")
                time.sleep(0.01)

    def close_end(self, end: Any) -> None:
        # Both ends of a round trip live in one process, with one eCAL initialisation: finalised once.
        held = [self.__dict__.pop(key, None) for key in ("_pubs", "_subs")]
        if any(h is not None for h in held):
            del held
            import ecal.nanobind_core as core

            core.finalize()


FACILITIES = [CloudtoidQueue(), SlickQueue(), Kickmsg(), SubethaSpsc(), Ecal()]
