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

HEADER = struct.Struct("<IQ")
TAG = struct.Struct("<I")
MIN_SIZE = HEADER.size + TAG.size
STOP_ID = 0xFFFFFFFF
_PATTERN = bytes(range(251))


class VerificationError(ValueError):
    """A consumer saw a message that is wrong: torn, corrupt, duplicated or out of order."""


def _tag(pid, seq):
    return (seq * 0x9E3779B1 + pid) & 0xFFFFFFFF


def _filler(size):
    body = size - MIN_SIZE
    return (_PATTERN * (body // len(_PATTERN) + 1))[:body]


def _check_size(size):
    if size < MIN_SIZE:
        raise ValueError(f"message size must be at least {MIN_SIZE} bytes, not {size}")


class Payload:
    """Producer side: builds message ``seq`` of producer ``pid``.

    ``slots`` buffers are rotated so that a batch of up to ``slots`` messages
    can be handed to a sender that copies synchronously without any of them
    aliasing another.
    """

    def __init__(self, size, pid=0, slots=1):
        _check_size(size)
        template = bytes(HEADER.size) + _filler(size) + bytes(TAG.size)
        self.size = size
        self.pid = pid
        self._bufs = [bytearray(template) for _ in range(max(1, slots))]
        self._tag_at = size - TAG.size

    def message(self, seq):
        """A reused bytearray: valid until ``slots`` more calls.  For senders that copy at once."""
        buf = self._bufs[seq % len(self._bufs)]
        HEADER.pack_into(buf, 0, self.pid, seq)
        TAG.pack_into(buf, self._tag_at, _tag(self.pid, seq))
        return buf

    def message_bytes(self, seq):
        """An immutable copy, for senders that keep the object (pickling queues, feeder threads)."""
        return bytes(self.message(seq))

    def stop(self):
        """End-of-stream marker: one per consumer from each producer."""
        buf = bytearray(self.size)
        HEADER.pack_into(buf, 0, STOP_ID, 0)
        return bytes(buf)


class Verifier:
    """Consumer side: checks every message and keeps an order-independent digest.

    ``strict`` demands consecutive sequence numbers per producer (one consumer);
    otherwise (several consumers share the producers' messages) each consumer
    only demands they increase, and the parent checks the digests add up.
    """

    def __init__(self, size, producers=1, strict=True):
        _check_size(size)
        self.size = size
        self.strict = strict
        self.count = 0
        self.stops = 0
        self._s1 = 0
        self._s2 = 0
        self._filler = _filler(size)
        self._tag_at = size - TAG.size
        self._next = [0] * producers

    def check(self, msg):
        """Verify one message; return False for a stop marker, True for data."""
        if len(msg) != self.size:
            raise VerificationError(f"message {self.count}: {len(msg)} bytes, expected {self.size}")
        pid, seq = HEADER.unpack_from(msg)
        if pid == STOP_ID:
            self.stops += 1
            return False
        if pid >= len(self._next):
            raise VerificationError(f"message {self.count}: unknown producer {pid}")
        want = self._next[pid]
        if seq != want and (self.strict or seq < want):
            what = "lost or reordered" if seq > want else "duplicated or reordered"
            raise VerificationError(f"producer {pid}: got sequence {seq}, expected {want} ({what})")
        if TAG.unpack_from(msg, self._tag_at)[0] != _tag(pid, seq) or not msg.startswith(
            self._filler, HEADER.size
        ):
            raise VerificationError(f"producer {pid} message {seq}: content corrupt")
        self._next[pid] = seq + 1
        self.count += 1
        # Weights are unique per message; count + sum + sum of squares makes a
        # loss that happens to be offset by a duplicate elsewhere add up wrong.
        w = (pid << 40) + seq + 1
        self._s1 += w
        self._s2 += w * w
        return True

    def digest(self):
        return (self.count, self._s1, self._s2)


def expected_digest(producers, n):
    """The sum of every consumer's digest when each producer sent n messages."""
    count = s1 = s2 = 0
    for pid in range(producers):
        base = pid << 40
        # w runs over base+1 .. base+n
        s1 += n * base + n * (n + 1) // 2
        s2 += n * base * base + 2 * base * (n * (n + 1) // 2) + n * (n + 1) * (2 * n + 1) // 6
        count += n
    return (count, s1, s2)


def combine(digests):
    return tuple(sum(parts) for parts in zip(*digests)) if digests else (0, 0, 0)
