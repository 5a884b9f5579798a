"""Fan-out scenarios: one producer, N subscribers each receiving every message.

``--scenarios fanout`` runs one scenario per subscriber count
(``fanout-1``, ``fanout-4``) at each of ``FANOUT_SIZES``, and the latency of
one message to all of them (``fanout-lat-4``, at the latency size): the
publisher stamps each message with CLOCK_MONOTONIC (one clock for every
process), each subscriber notes when it has it, and a message's latency is
the last subscriber's.  Subscribers acknowledge on a ringipc ring, and the
publisher sends the next message only when all have, so no message queues
behind another (the acknowledgements are not timed).  Only facilities
with ``fanout = True`` (ringipc/bench/adapters/fanout.py) take part, and
ratios are taken against ``FANOUT_BASELINE``: multiprocessing with one Queue
per subscriber.  The rate is deliveries per second: messages x subscribers.
"""
import struct
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

FANOUT = "fanout"
FANOUT_SIZES = [64, 1 << 20]
FANOUT_SUBSCRIBERS = [1, 4]
FANOUT_LATENCY_SUBSCRIBERS = [4]
FANOUT_BASELINE = "mp.Queue-per-sub"
_LATENCY = "lat"
STAMP = struct.Struct("<QQ")  # sequence number, send time (CLOCK_MONOTONIC ns)


def scenario_name(subscribers: int) -> str:
    return f"{FANOUT}-{subscribers}"


def latency_scenario_name(subscribers: int) -> str:
    return f"{FANOUT}-{_LATENCY}-{subscribers}"


def is_fanout(scenario: str) -> bool:
    return scenario.startswith(FANOUT + "-")


def is_fanout_latency(scenario: str) -> bool:
    return scenario.startswith(f"{FANOUT}-{_LATENCY}-")


def subscribers_of(scenario: str) -> int:
    return int(scenario.rsplit("-", 1)[1])


def title(scenario: str) -> str:
    n = subscribers_of(scenario)
    if is_fanout_latency(scenario):
        return f"Fan-out latency: one message to all {n} subscribers, until the last has it"
    return f"Fan-out, 1 publisher -> {n} subscriber{'s' if n > 1 else ''} (deliveries/s)"


def stamped_publisher(send: Callable[[bytes], Any], acks: Any, n: int, size: int, subscribers: int) -> int:
    """Send n stamped messages, each once every subscriber acknowledged the previous one."""
    body = bytearray(max(size, STAMP.size))
    recv_ack = acks.recv_bytes
    for seq in range(n):
        STAMP.pack_into(body, 0, seq, time.monotonic_ns())
        send(bytes(body))
        for _ in range(subscribers):
            recv_ack(timeout=30)
    return n


def stamped_subscriber(recv: Callable[[], Any], acks: Any, n: int, size: int) -> List[int]:
    """Receive n stamped messages in order; return each one's latency in ns."""
    clock = time.monotonic_ns
    ack = acks.send_bytes
    out: List[int] = []
    for want in range(n):
        msg = recv()
        t1 = clock()
        seq, t0 = STAMP.unpack_from(msg)
        if seq != want or len(msg) != max(size, STAMP.size):
            raise ValueError(f"stamped message {seq} of {len(msg)} bytes, expected {want} of {size}")
        out.append(t1 - t0)
        ack(b"")
    return out


def check_round(digests: Sequence[Tuple[int, ...]], want: Tuple[int, ...]) -> Optional[str]:
    """Every subscriber must have received the whole stream: returns how many
    subscribers fell short, with the first difference, or None."""
    for i, got in enumerate(digests):
        if got != want:
            lost = want[0] - got[0]
            what = f"lost {lost}" if lost > 0 else (f"{-lost} extra" if lost else "a wrong set of")
            return f"subscriber {i}: {what} messages of {want[0]} (checksums differ)"
    return None
