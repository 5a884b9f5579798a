"""Hypothesis stateful tests: a Topic behaves like an exact model of its cells.

The model mirrors the layout (64-byte cells, records that never wrap, padding
to the end of the data area, tail moved over whole records) and each policy:

* lossless: a publish fails with queue.Full exactly when it would overwrite a
  record an open subscriber has not read; subscribers receive everything;
* drop-oldest: publishes always succeed; a subscriber whose next record was
  overwritten goes on at the oldest retained one, and ``missed`` counts the gap;
* latest: a read returns the newest message if one arrived since the last
  read, with ``missed`` counting the values it replaced.
"""
import queue

import hypothesis.strategies as st
from hypothesis import event, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ringipc import Topic

CAPACITY = 1024
CELL = 64
NCELLS = CAPACITY // CELL


def cells(length):
    return max(1, -(-length // CELL))


def payload(seq, length):
    return bytes((seq * 7 + i) & 0xFF for i in range(length))


class _Sub:
    def __init__(self, handle, pos, expected, seen_last):
        self.handle = handle
        self.pos = pos          # next record to look at
        self.slot_pos = pos     # what holds lossless publishers back
        self.expected = expected
        self.missed = 0
        self.seen_last = seen_last


class TopicModel(RuleBasedStateMachine):
    policy = "lossless"

    def __init__(self):
        super().__init__()
        self.topic = Topic(capacity=CAPACITY, policy=self.policy)
        self.pub = self.topic.publisher()
        self.records = []  # (pos, cells, seq or None for padding, length)
        self.head = self.tail = 0
        self.next_seq = 0
        self.last = None
        self.subs = []

    def teardown(self):
        self.topic.close()

    # -- model helpers --------------------------------------------------------
    def _record_at(self, pos):
        for r in self.records:
            if r[0] == pos:
                return r
        raise AssertionError(f"no record at {pos}")

    def _retained(self):
        return [r for r in self.records if r[0] >= self.tail]

    # -- rules ----------------------------------------------------------------
    @rule(length=st.integers(0, CAPACITY // 2))
    def publish(self, length):
        n = cells(length)
        off = self.head % NCELLS
        pad = NCELLS - off if off + n > NCELLS else 0
        end = self.head + pad + n
        new_tail = self.tail
        while end - new_tail > NCELLS:
            new_tail += self._record_at(new_tail)[1]
        fits = True
        if self.policy == "lossless" and new_tail > self.tail:
            low = min([s.slot_pos for s in self.subs] + [self.head])
            fits = low >= new_tail
        try:
            self.pub.send_bytes(payload(self.next_seq, length), block=False)
        except queue.Full:
            assert not fits, "topic reported full although no subscriber holds the space"
            event("publish: full")
            return
        assert fits, "a lossless publisher overwrote a record a subscriber has not read"
        self.tail = new_tail
        if pad:
            self.records.append((self.head, pad, None, 0))
        self.records.append((self.head + pad, n, self.next_seq, length))
        self.last = self.head + pad
        self.head = end
        self.next_seq += 1
        self.records = self._retained()

    @rule(history=st.integers(0, 20))
    def subscribe(self, history):
        if len(self.subs) >= 6:
            return
        handle = self.topic.subscribe(history=history)
        if self.policy == "latest":
            seen = None if history > 0 else self.last
            expected = self.next_seq - 1 if history > 0 and self.next_seq > 0 else self.next_seq
            self.subs.append(_Sub(handle, self.head, expected, seen))
            return
        committed = [r for r in self._retained() if r[2] is not None]
        if history == 0 or not committed:
            pos, expected = self.head, self.next_seq
        else:
            first = committed[max(0, len(committed) - history)]
            pos, expected = first[0], first[2]
        self.subs.append(_Sub(handle, pos, expected, None))

    @precondition(lambda self: self.subs)
    @rule(data=st.data())
    def read(self, data):
        sub = data.draw(st.sampled_from(self.subs))
        want = self._next_for(sub)
        try:
            got = sub.handle.recv_bytes(block=False)
        except queue.Empty:
            assert want is None, f"expected message {want}, topic says empty"
            return
        assert want is not None, "topic delivered a message the model does not have"
        seq, length, next_pos = want
        if seq > sub.expected:
            event("read: missed some")
        assert got == payload(seq, length)
        sub.missed += seq - sub.expected
        sub.expected = seq + 1
        sub.pos = sub.slot_pos = next_pos
        assert sub.handle.missed == sub.missed and sub.handle.seq == seq

    def _next_for(self, sub):
        if self.policy == "latest":
            if self.last is None or self.last == sub.seen_last:
                return None
            pos, n, seq, length = self._record_at(self.last)
            sub.seen_last = pos
            return seq, length, pos + n
        if sub.pos < self.tail:
            event("read: lapped")
            sub.pos = self.tail  # lapped: on at the oldest retained record
        while sub.pos < self.head:
            pos, n, seq, length = self._record_at(sub.pos)
            if seq is not None:
                return seq, length, pos + n
            sub.pos += n
        return None

    @precondition(lambda self: self.subs)
    @rule(data=st.data())
    def unsubscribe(self, data):
        sub = data.draw(st.sampled_from(self.subs))
        sub.handle.close()
        self.subs.remove(sub)

    @invariant()
    def lossless_never_misses(self):
        if self.policy == "lossless":
            assert all(s.handle.missed == 0 for s in self.subs)


class LosslessModel(TopicModel):
    policy = "lossless"


class DropOldestModel(TopicModel):
    policy = "drop-oldest"


class LatestModel(TopicModel):
    policy = "latest"


_settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
TestLossless = _settings(LosslessModel).TestCase
TestDropOldest = _settings(DropOldestModel).TestCase
TestLatest = _settings(LatestModel).TestCase
