"""The one message format every facility carries, and its verifier.

A message of ``size`` bytes is laid out as::

    [producer id: u32][sequence: u64][filler ...][tag: u32]

The filler is a fixed pattern whose period (251, a prime) does not divide any
power of two, so a copy shifted by a ring's wrap or a lost chunk of a stream
shows up as a mismatch.  The tag mixes sequence and producer id so a message
whose head and tail come from two different messages (a torn copy) is caught
too.  Checking is a few fixed-cost operations plus one memcmp, so it costs every
facility the same.
"""
import struct
from typing import Any, Callable, Tuple

HEADER = struct.Struct("<IQ")
TAG = struct.Struct("<I")
MIN_SIZE = HEADER.size + TAG.size
STOP_ID = 0xFFFFFFFF
STOP_PREFIX = struct.pack("<I", STOP_ID)  # how a stop marker starts
_PATTERN = bytes(range(251))


class VerificationError(ValueError):
    """A consumer saw a message that is wrong: torn, corrupt, duplicated or out of order."""


def _tag(pid: int, seq: int) -> int:
    # Verifier.check inlines this formula.
    return (seq * 0x9E3779B1 + pid) & 0xFFFFFFFF


def _filler(size: int) -> bytes:
    body = size - MIN_SIZE
    return (_PATTERN * (body // len(_PATTERN) + 1))[:body]


def _check_size(size: int) -> None:
    if size < MIN_SIZE:
        raise ValueError(f"message size must be at least {MIN_SIZE} bytes, not {size}")


class Payload:
    """Producer side: builds message ``seq`` of producer ``pid``.

    ``slots`` buffers are rotated so that a batch of up to ``slots`` messages
    can be handed to a sender that copies synchronously without any of them
    aliasing another.
    """

    def __init__(self, size: int, pid: int = 0, slots: int = 1) -> None:
        _check_size(size)
        template = bytes(HEADER.size) + _filler(size) + bytes(TAG.size)
        self.size = size
        self.pid = pid
        self._bufs = [bytearray(template) for _ in range(max(1, slots))]
        self._tag_at = size - TAG.size

    def message(self, seq: int) -> Any:
        """A reused bytearray: valid until ``slots`` more calls.  For senders that copy at once."""
        buf = self._bufs[seq % len(self._bufs)]
        HEADER.pack_into(buf, 0, self.pid, seq)
        TAG.pack_into(buf, self._tag_at, _tag(self.pid, seq))
        return buf

    def message_bytes(self, seq: int) -> bytes:
        """An immutable copy, for senders that keep the object (pickling queues, feeder threads)."""
        return bytes(self.message(seq))

    def stop(self) -> bytes:
        """End-of-stream marker: one per consumer from each producer."""
        buf = bytearray(self.size)
        HEADER.pack_into(buf, 0, STOP_ID, 0)
        return bytes(buf)


class Verifier:
    """Consumer side: checks every message and keeps an order-independent digest.

    ``strict`` demands consecutive sequence numbers per producer (one consumer);
    otherwise (several consumers share the producers' messages) each consumer
    only demands they increase, and the parent checks the digests add up.
    ``check`` is a closure over locals: it runs once per message in every
    facility's timed loop, so its cost is kept to a few hundred nanoseconds.
    """

    def __init__(self, size: int, producers: int = 1, strict: bool = True) -> None:
        _check_size(size)
        self.size = size
        self.strict = strict
        self.stops = 0
        self._next = [0] * producers
        self._sums = [0, 0, 0]  # count, sum and sum of squares of message weights (non-strict)
        self.check = self._make_check()

    def _make_check(self) -> Callable[[Any], bool]:
        size, strict, nxt, sums = self.size, self.strict, self._next, self._sums
        filler, body_at, producers = _filler(size), HEADER.size, len(nxt)
        # Header and tag in one unpack, skipping the filler between them.
        unpack = struct.Struct(f"<IQ{size - MIN_SIZE}xI").unpack

        def check(msg: Any) -> bool:
            """Verify one message; return False for a stop marker, True for data."""
            if len(msg) != size:
                raise VerificationError(f"a message of {len(msg)} bytes, expected {size}")
            pid, seq, tag = unpack(msg)
            if pid >= producers:
                if pid == STOP_ID:
                    self.stops += 1
                    return False
                raise VerificationError(f"message from unknown producer {pid}")
            want = nxt[pid]
            if seq != want and (strict or seq < want):
                what = "lost or reordered" if seq > want else "duplicated or reordered"
                raise VerificationError(f"producer {pid}: got sequence {seq}, expected {want} ({what})")
            if tag != (seq * 0x9E3779B1 + pid) & 0xFFFFFFFF or not msg.startswith(
                filler, body_at
            ):
                raise VerificationError(f"producer {pid} message {seq}: content corrupt")
            nxt[pid] = seq + 1
            if not strict:
                # Weights are unique per message; count + sum + sum of squares makes a
                # loss that happens to be offset by a duplicate elsewhere add up wrong.
                w = (pid << 40) + seq + 1
                sums[0] += 1
                sums[1] += w
                sums[2] += w * w
            return True

        return check

    @property
    def count(self) -> int:
        return sum(self._next) if self.strict else self._sums[0]

    def digest(self) -> Tuple[int, ...]:
        if self.strict:
            # Strict checking saw exactly 0 .. next-1 from each producer.
            return combine([_digest_of(pid, n) for pid, n in enumerate(self._next)])
        return tuple(self._sums)


def _digest_of(pid: int, n: int) -> Tuple[int, int, int]:
    """Digest of messages 0 .. n-1 of one producer: weights base+1 .. base+n."""
    base = pid << 40
    tri = n * (n + 1) // 2
    return (n, n * base + tri, n * base * base + 2 * base * tri + n * (n + 1) * (2 * n + 1) // 6)


def expected_digest(producers: int, n: int) -> Tuple[int, ...]:
    """The sum of every consumer's digest when each producer sent n messages."""
    return combine([_digest_of(pid, n) for pid in range(producers)])


def combine(digests: Any) -> Tuple[int, ...]:
    return tuple(sum(parts) for parts in zip(*digests)) if digests else (0, 0, 0)
