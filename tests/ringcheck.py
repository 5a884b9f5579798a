"""Message format shared by the cross-process ring tests: every message says
who sent it, its sequence number and a checksum of its payload, so a consumer
can prove exactly-once, in-order, uncorrupted delivery."""
import os
import struct
import zlib

HEADER = struct.Struct("<IQI")   # producer id, sequence, crc32 of payload
STOP = 0xFFFFFFFF
_BLOCK = bytes((i * 131 + (i >> 8) * 17) & 0xFF for i in range(1 << 16))


def scaled(count):
    """A stress test's message count times RINGIPC_STRESS_SCALE (default 1):
    the RINGIPC_CHAOS build (.ci/variant chaos), where every message pauses
    at random inside the protocol, runs the same tests with fewer messages."""
    return max(1, int(count * float(os.environ.get("RINGIPC_STRESS_SCALE", "1"))))


def payload_size(producer, seq, max_size):
    # Deterministic spread over every size class, including 0 and max_size.
    return (seq * 7919 + producer * 104729) % (max_size + 1)


def make_message(producer, seq, max_size):
    size = payload_size(producer, seq, max_size)
    start = (seq * 31) % (len(_BLOCK) - max_size)
    payload = _BLOCK[start:start + size]
    return HEADER.pack(producer, seq, zlib.crc32(payload)) + payload


def stop_message():
    return HEADER.pack(STOP, 0, 0)


class Tally:
    """Per-producer order check plus count / sum / sum of squares of sequences,
    which together expose any lost or duplicated message."""

    def __init__(self):
        self.last = {}
        self.count = {}
        self.sums = {}
        self.squares = {}

    def add(self, message):
        producer, seq, crc = HEADER.unpack_from(message)
        if producer == STOP:
            return False
        payload = message[HEADER.size:]
        if zlib.crc32(payload) != crc:
            raise AssertionError(f"corrupt payload from producer {producer} seq {seq}")
        if seq <= self.last.get(producer, -1):
            raise AssertionError(f"producer {producer}: seq {seq} after {self.last[producer]}")
        self.last[producer] = seq
        self.count[producer] = self.count.get(producer, 0) + 1
        self.sums[producer] = self.sums.get(producer, 0) + seq
        self.squares[producer] = self.squares.get(producer, 0) + seq * seq
        return True

    def summary(self):
        return {p: (self.count[p], self.sums[p], self.squares[p]) for p in self.count}


def merge(summaries):
    total = {}
    for summary in summaries:
        for p, (c, s, q) in summary.items():
            c0, s0, q0 = total.get(p, (0, 0, 0))
            total[p] = (c0 + c, s0 + s, q0 + q)
    return total


def expected_for(n):
    """(count, sum, sum of squares) of the sequences 0 .. n-1."""
    return (n, n * (n - 1) // 2, (n - 1) * n * (2 * n - 1) // 6)


# Small numbered messages, for tests that follow individual messages through a
# ring (recovery, sleepers) rather than stress it.
NUMBER = struct.Struct("<Q")


def send_numbers(ring, numbers, **kw):
    for n in numbers:
        ring.send_bytes(NUMBER.pack(n), **kw)


def drain_numbers(ring):
    """Every number waiting in the ring, without blocking."""
    import queue

    got = []
    while True:
        try:
            got.append(NUMBER.unpack(ring.recv_bytes(block=False))[0])
        except queue.Empty:
            return got
