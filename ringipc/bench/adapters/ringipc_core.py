"""ringipc's own facilities: the raw ring and the multiprocessing drop-ins (the stream mode is in ringipc_stream)."""
from typing import Any, Callable, List, Literal, Optional, Tuple

from ringipc.bench.adapters.base import (
    BATCH_SCENARIOS, Channel, ConnectionPair, Facility, SharedQueue, into_receiver,
)
from ringipc.bench.adapters.framing import LARGE


# Where each public name is defined, for a build whose ringipc/__init__.py does
# not re-export it yet: the benchmark can measure a facility as soon as it exists.
_HOMES = {"Queue": "ringipc.mp.queues", "SimpleQueue": "ringipc.mp.queues", "Pipe": "ringipc.mp.connection"}


def _find(name: str) -> Any:
    """ringipc.<name>, else the module that defines it; None when neither has it."""
    import importlib

    import ringipc

    found = getattr(ringipc, name, None)
    if found is None and name in _HOMES:
        try:
            found = getattr(importlib.import_module(_HOMES[name]), name, None)
        except ImportError:
            pass
    return found


def _api(*names: str) -> Tuple[bool, str]:
    """(True, "") when ``ringipc`` provides every name, else why not."""
    try:
        missing = [n for n in names if _find(n) is None]
    except ImportError as exc:
        return False, f"ringipc not importable: {exc}"
    if missing:
        return False, f"ringipc.{', ringipc.'.join(missing)} not available in this build"
    return True, ""


def _capacity(size: int) -> int:
    # max_message_size is capacity // 2; leave room for the record header.
    cap = 1 << 20
    while cap // 2 < size + 64:
        cap <<= 1
    return cap


class Ring(Facility):
    kind: Literal["spsc", "mpmc"] = "spsc"
    copies_on_send = True

    @property
    def name(self) -> str:  # type: ignore[override]  # a class attribute in Facility
        return f"ringipc.Ring-{self.kind}"

    @property
    def mpmc(self) -> bool:  # type: ignore[override]  # a class attribute in Facility
        return self.kind == "mpmc"

    def available(self) -> Tuple[bool, str]:
        return _api("Ring")

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        import ringipc

        ring = ringipc.Ring(capacity=_capacity(size), kind=self.kind)
        return Channel([ring] * producers, [ring] * consumers, ring.close)

    def open_sender(self, ring: Any, size: int) -> Callable[[Any], Any]:
        return ring.send_bytes

    def open_receiver(self, ring: Any, size: int) -> Callable[[], Any]:
        if size >= LARGE:
            return into_receiver(ring.recv_bytes_into, size)
        return ring.recv_bytes

    def close_end(self, ring: Any) -> None:
        ring.close()


class RingMpmc(Ring):
    kind: Literal["spsc", "mpmc"] = "mpmc"


class RingSleeping(Ring):
    """The ring with no spinning: every wait sleeps in the kernel at once.
    Compares the futex wake-up path itself with os.pipe's."""

    scenarios = ("latency",)

    @property
    def name(self) -> str:  # type: ignore[override]  # a class attribute in Facility
        return f"ringipc.Ring-{self.kind}.nospin"

    def open_sender(self, ring: Any, size: int) -> Callable[[Any], Any]:
        ring.spin = 0
        return ring.send_bytes

    def open_receiver(self, ring: Any, size: int) -> Callable[[], Any]:
        ring.spin = 0
        return super().open_receiver(ring, size)


class RingMany(Ring):
    """The batch calls: one synchronisation per batch instead of per message."""

    batched = True
    scenarios = BATCH_SCENARIOS

    @property
    def name(self) -> str:  # type: ignore[override]  # a class attribute in Facility
        return f"ringipc.Ring-{self.kind}.many"

    def open_batch_sender(self, ring: Any, size: int) -> Callable[[List[Any]], Any]:
        return ring.send_bytes_many

    def open_batch_receiver(self, ring: Any, size: int) -> Optional[Callable[[], List[Any]]]:
        recv_many = ring.recv_bytes_many
        return lambda: recv_many(64)


class Queue(SharedQueue):
    name = "ringipc.Queue"
    factory = "Queue"

    def available(self) -> Tuple[bool, str]:
        return _api(self.factory)

    def make_queue(self, size: int) -> Any:
        # maxsize=0 like the multiprocessing.Queue it is compared with.
        return _find(self.factory)()


class QueueMany(Queue):
    name = "ringipc.Queue.many"
    batched = True
    scenarios = BATCH_SCENARIOS

    def open_batch_sender(self, q: Any, size: int) -> Callable[[List[Any]], Any]:
        return q.put_many

    def open_batch_receiver(self, q: Any, size: int) -> Optional[Callable[[], List[Any]]]:
        get_many = q.get_many
        return lambda: get_many(max_messages=64)


class SimpleQueue(Queue):
    name = "ringipc.SimpleQueue"
    factory = "SimpleQueue"


class Pipe(ConnectionPair):
    name = "ringipc.Pipe"

    def available(self) -> Tuple[bool, str]:
        return _api("Pipe")

    def make_pair(self, size: int) -> Any:
        return _find("Pipe")()


FACILITIES = [Ring(), RingMpmc(), RingSleeping(), RingMany(), Queue(), QueueMany(), SimpleQueue(), Pipe()]
