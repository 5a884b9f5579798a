"""What every facility adapter provides, and the loops they all share.

An adapter describes how to *make* a channel (``setup``, in the parent) and how
to *use* one end of it (``open_sender`` / ``open_receiver``, in a child); the
producer, consumer, ping and echo loops below are written once and drive every
facility the same way, so a difference in the numbers is the facility's.
"""
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

from ringipc.bench.adapters.framing import LARGE
from ringipc.bench.payload import Payload, VerificationError, Verifier

# Messages are built before the clock starts when they fit in this much memory:
# building one costs about as much as a fast channel moves it, and it is not IPC.
PREBUILD_BYTES = 256 << 20


#: a round trip of one message has nothing to batch: batch variants skip the latency scenario
BATCH_SCENARIOS = ("throughput", "mpmc")


@dataclass
class Channel:
    """Picklable ends handed to children; ``close`` runs in the parent after they exit."""

    producer_ends: List[Any]
    consumer_ends: List[Any]
    close: Callable[[], None] = field(default=lambda: None)


class Deferred:
    """A send or receive callable whose target exists only once the facility
    is connected (an end accepted in a thread).  The runner replaces it with
    ``resolve()`` after ``connected()``, so the timed loop pays no
    indirection; called before that, it forwards."""

    def __init__(self, resolve: Callable[[], Any]) -> None:
        self.resolve = resolve

    def __call__(self, *args: Any) -> Any:
        return self.resolve()(*args)


def resolved(fn: Any) -> Any:
    """``fn``, or what it stands for if it is a :class:`Deferred`."""
    return fn.resolve() if isinstance(fn, Deferred) else fn


class Facility:
    """Base adapter.  Subclasses set ``name`` and implement setup/open_sender/open_receiver."""

    name = "?"
    #: several producers and consumers may share one channel (needed for the NxM scenario)
    mpmc = False
    #: the sender copies the message before returning, so a reused buffer may be passed
    copies_on_send = False
    #: scenario names this facility can run (None: all)
    scenarios: Optional[Tuple[str, ...]] = None
    #: the producer hands lists of ``batch_messages(size)`` messages to ``open_batch_sender``
    batched = False

    # -- in the parent ----------------------------------------------------------------
    def available(self) -> Tuple[bool, str]:
        """(True, "") or (False, why): missing package, API not landed yet ..."""
        return True, ""

    def supports(self, size: int, producers: int = 1, consumers: int = 1) -> Tuple[bool, str]:
        """(True, "") or (False, why) for one configuration of an available facility."""
        if (producers > 1 or consumers > 1) and not self.mpmc:
            return False, "no shared many-to-many channel"
        return True, ""

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        raise NotImplementedError

    # -- in a child: connect/attach here, outside the timed region -----------------------
    def open_sender(self, end: Any, size: int) -> Callable[[Any], Any]:
        """Return ``send(msg)``."""
        raise NotImplementedError

    def open_receiver(self, end: Any, size: int) -> Callable[[], Any]:
        """Return ``recv() -> bytes-like`` (may reuse one buffer between calls)."""
        raise NotImplementedError

    def open_batch_sender(self, end: Any, size: int) -> Callable[[List[Any]], Any]:
        """Return ``send_many(list_of_msgs)``."""
        raise NotImplementedError

    def open_batch_receiver(self, end: Any, size: int) -> Optional[Callable[[], List[Any]]]:
        """Return ``recv_many() -> list`` or None to receive one at a time."""
        return None

    def connected(self) -> None:
        """Called in the child once all its ends are open: finish connecting (accepts)."""

    def close_end(self, end: Any) -> None:
        """Called in the child after its loop (flush feeder threads, close handles)."""

    # -- the shared loops ----------------------------------------------------------------
    def batch_messages(self, size: int) -> int:
        # A batch of about 256 KiB keeps big messages from all landing in one call.
        return max(1, min(64, (256 << 10) // size))

    def producer(self, send: Callable[..., Any], n: int, size: int, pid: int = 0, consumers: int = 1) -> int:
        """Send n messages then one stop marker per consumer; return the start time (ns)."""
        batch = self.batch_messages(size) if self.batched else 1
        payload = Payload(size, pid, slots=batch)
        make = payload.message if self.copies_on_send else payload.message_bytes
        prebuilt = None
        if n * (size + 64) <= PREBUILD_BYTES:
            prebuilt = [payload.message_bytes(seq) for seq in range(n)]
        t0 = time.monotonic_ns()
        if self.batched:
            if prebuilt is not None:
                for first in range(0, n, batch):
                    send(prebuilt[first:first + batch])
            else:
                for first in range(0, n, batch):
                    send([make(seq) for seq in range(first, min(n, first + batch))])
            send([payload.stop()] * consumers)
        else:
            if prebuilt is not None:
                for message in prebuilt:
                    send(message)
            else:
                for seq in range(n):
                    send(make(seq))
            for _ in range(consumers):
                send(payload.stop())
        return t0

    def consumer(self, recv: Callable[..., Any], recv_many: Optional[Callable[[], Any]], size: int,
                 producers: int = 1, consumers: int = 1, most: int = 0) -> Tuple[int, Any]:
        """Receive until every producer's stop marker; return (end time ns, digest).

        ``most``: how many messages (stop markers included) this consumer can
        get at the most, when known."""
        verifier = Verifier(size, producers, strict=consumers == 1)
        check = verifier.check
        # Every stop marker is the same bytes: spotting one is one C-level
        # compare, so the timed loop costs the harness as little as possible
        # (a slice per message cost as much as a fast channel's receive).
        stop = Payload(size).stop()
        # Each producer sends one stop per consumer, each consumer takes one per producer:
        # when all have stopped, every marker is taken, so (FIFO) every message before them too.
        stops = producers
        if recv_many is not None:
            # Batches of immutable messages are checked after the clock stops.
            # Keeping every received object alive until then would time the
            # allocator instead (a fresh page faulted in every few dozen
            # messages caps a consumer at a few M msg/s on some machines), so
            # each batch is copied, joined, into one buffer faulted in before
            # the clock starts, and its objects are freed for the next batch.
            room = most * size if 0 < most * size <= PREBUILD_BYTES else 0
            store = bytearray(b"\x01") * room  # the repeat writes every page
            at = 0
            batches = []
            left = stops
            while left:
                got = recv_many()
                if got and not isinstance(got[0], bytes):
                    for msg in got:  # reused buffers: check before the next receive
                        check(msg)
                    left = stops - verifier.stops
                    continue
                left -= got.count(stop)
                if room:
                    joined = b"".join(got)
                    end = at + len(joined)
                    if len(joined) != len(got) * size or end > room:
                        raise VerificationError(f"a batch of {len(got)} messages held {len(joined)} bytes, "
                                                f"expected {size} each and at most {most} in all")
                    store[at:end] = joined
                    at = end
                else:
                    batches.append(got)
            t1 = time.monotonic_ns()
            for start in range(0, at, size):
                check(store[start:start + size])
            for got in batches:
                for msg in got:
                    check(msg)
            return t1, verifier.digest()
        else:
            first = recv()
            if isinstance(first, bytes):
                # Immutable messages can be checked after the clock stops, so
                # the timed loop is the channel's own work (a reused receive
                # buffer, by contrast, must be checked before the next receive).
                received = [first]
                keep = received.append
                left = stops - (first == stop)
                while left:
                    msg = recv()
                    keep(msg)
                    if msg == stop:
                        left -= 1
                t1 = time.monotonic_ns()
                for msg in received:
                    check(msg)
                return t1, verifier.digest()
            check(first)
            while verifier.stops < stops:
                check(recv())
        t1 = time.monotonic_ns()
        return t1, verifier.digest()

    def ping(self, send: Callable[..., Any], recv: Callable[..., Any], n: int, size: int, warmup: int = 100) -> List[int]:
        """Round trips of one message; return sorted round-trip times in ns."""
        payload = Payload(size)
        make = payload.message if self.copies_on_send else payload.message_bytes
        verifier = Verifier(size)
        clock = time.monotonic_ns
        times = []
        for seq in range(warmup + n):
            t0 = clock()
            send(make(seq))
            msg = recv()
            t1 = clock()
            verifier.check(msg)
            times.append(t1 - t0)
        send(payload.stop())
        del times[:warmup]
        times.sort()
        return times

    def echo(self, send: Callable[..., Any], recv: Callable[..., Any], size: int) -> None:
        """Send back every message until the stop marker."""
        verifier = Verifier(size)
        while True:
            msg = recv()
            if not verifier.check(msg):
                return
            send(msg if self.copies_on_send else bytes(msg))


class SharedQueue(Facility):
    """A queue object that every producer and consumer shares (put/get), as multiprocessing's."""

    mpmc = True

    def make_queue(self, size: int) -> Any:
        raise NotImplementedError

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        q = self.make_queue(size)
        return Channel([q] * producers, [q] * consumers, getattr(q, "close", lambda: None))

    def open_sender(self, q: Any, size: int) -> Callable[[Any], Any]:
        return q.put

    def open_receiver(self, q: Any, size: int) -> Callable[[], Any]:
        return q.get

    def close_end(self, q: Any) -> None:
        # Queues whose put() hands objects to a feeder thread: wait until it has written them all.
        if hasattr(q, "join_thread"):
            q.close()
            q.join_thread()


class ConnectionPair(Facility):
    """Two ``Connection``-like ends (send_bytes / recv_bytes / recv_bytes_into), as multiprocessing.Pipe."""

    copies_on_send = True

    def make_pair(self, size: int) -> Any:
        """Return (receiving end, sending end)."""
        raise NotImplementedError

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        r, w = self.make_pair(size)

        def close() -> None:
            r.close()
            w.close()

        return Channel([w], [r], close)

    def open_sender(self, conn: Any, size: int) -> Callable[[Any], Any]:
        return conn.send_bytes

    def open_receiver(self, conn: Any, size: int) -> Callable[[], Any]:
        if size >= LARGE:
            return into_receiver(conn.recv_bytes_into, size)
        return conn.recv_bytes


def into_receiver(recv_bytes_into: Callable[..., Any], size: int) -> Callable[[], Any]:
    """Receive into one reused exact-size buffer, as a user moving big messages would."""
    buf = bytearray(size)

    def recv() -> Any:
        got = recv_bytes_into(buf)
        return buf if got == size else bytes(got)  # a wrong length fails verification

    return recv
