"""Hypothesis stateful test: a Ring behaves like a bounded deque of byte strings."""
import collections
import queue

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ringipc import BufferTooShort, Ring

CAPACITY = 1024  # small, so that wrap-around and full happen constantly
CELL = 64


def cells(payload):
    return max(1, -(-len(payload) // CELL))


class RingModel(RuleBasedStateMachine):
    kind = "spsc"

    def __init__(self):
        super().__init__()
        self.ring = Ring(capacity=CAPACITY, kind=self.kind)
        self.model = collections.deque()
        self.head = 0      # cells claimed, padding included: mirrors the ring's positions
        self.release = 0

    def teardown(self):
        self.ring.close()

    def _fits(self, n):
        offset = self.head % (CAPACITY // CELL)
        pad = (CAPACITY // CELL) - offset if offset + n > CAPACITY // CELL else 0
        return self.head + pad + n - self.release <= CAPACITY // CELL, pad

    @rule(payload=st.binary(max_size=CAPACITY // 2))
    def send(self, payload):
        fits, pad = self._fits(cells(payload))
        try:
            self.ring.send_bytes(payload, block=False)
        except queue.Full:
            assert not fits, "ring reported full although the model has room"
            return
        assert fits, "ring accepted a message the model has no room for"
        self.head += pad + cells(payload)
        self.model.append((payload, self.head))

    @rule(payloads=st.lists(st.binary(max_size=CAPACITY // 4), max_size=8))
    def send_many(self, payloads):
        """A batch goes in exactly as far as the same messages sent one by one
        would (one claim per batch must not change what fits)."""
        expected = 0
        for payload in payloads:
            fits, pad = self._fits(cells(payload))
            if not fits:
                break
            self.head += pad + cells(payload)
            self.model.append((payload, self.head))
            expected += 1
        try:
            sent = self.ring.send_bytes_many(payloads, block=False)
        except queue.Full as exc:
            sent = exc.sent
            assert sent < len(payloads), "queue.Full after every message went in"
        assert sent == expected, f"batch put in {sent} messages, the model {expected}"

    @rule(payload=st.binary(min_size=CAPACITY // 2 + 1, max_size=CAPACITY))
    def send_oversize(self, payload):
        try:
            self.ring.send_bytes(payload, block=False)
        except ValueError:
            return
        raise AssertionError("oversize message accepted")

    @rule()
    def recv(self):
        try:
            got = self.ring.recv_bytes(block=False)
        except queue.Empty:
            assert not self.model, "ring reported empty while the model holds messages"
            return
        self._consumed(got)

    def _consumed(self, payload):
        # A record's wrap padding sits in front of it, so reading the record
        # frees everything up to the end of its claim.
        expected, end = self.model.popleft()
        assert payload == expected
        self.release = end

    @precondition(lambda self: len(self.model) > 0)
    @rule(n=st.integers(min_value=1, max_value=8))
    def recv_many(self, n):
        got = self.ring.recv_bytes_many(n, block=False)
        assert 0 < len(got) <= n
        for payload in got:
            self._consumed(payload)

    @rule(buf_size=st.integers(min_value=0, max_value=CAPACITY))
    def recv_into(self, buf_size):
        buf = bytearray(buf_size)
        try:
            n = self.ring.recv_bytes_into(buf, block=False)
        except queue.Empty:
            assert not self.model
            return
        except BufferTooShort as exc:  # consumed, and carried in args[0]
            assert len(exc.args[0]) > buf_size
            self._consumed(exc.args[0])
            return
        self._consumed(bytes(buf[:n]))

    @invariant()
    def poll_matches_model(self):
        assert self.ring.poll() == bool(self.model)


class SpscModel(RingModel):
    kind = "spsc"


class MpmcModel(RingModel):
    kind = "mpmc"


TestSpscModel = SpscModel.TestCase
TestMpmcModel = MpmcModel.TestCase
TestSpscModel.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestMpmcModel.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
