"""Random corrupt ring states for tests/test_ring_fuzz.py, each made from its
seed alone (random.Random(seed)) so that a failing seed replays exactly.

A state starts as a valid ring that random traffic has moved somewhere
(positions past a wrap-around, padding records, claims held open), then gets
a few mutations from a structured menu: values at the edges of the ring's
invariants, not only random bytes - positions just beside, far from and across
each other; record tags in every state, of this lap or another; lengths where
cell counts overflow; owner words naming this, a live, a dead or an impossible
process; waiter counts at their maximum.  Random bytes come on top.
"""
import os
import queue
import random

import ringipc
from ringipc import Ring
from ringipc.core._ring import process_start

from _segment_poke import Poke

U64 = 2**64 - 1
# Above the kernel's largest possible pid_max (PID_MAX_LIMIT = 2^22): never alive.
IMPOSSIBLE_PID = 1 << 22
# ringipc/errors.py: RingError is the base of CorruptSegment, MessageTooLarge,
# ChannelClosed, BufferTooShort, PeerDied; the rest are the standard classes
# the docs promise for empty, full and closed.
ALLOWED = (ringipc.RingError, queue.Empty, queue.Full, EOFError, BrokenPipeError)


def _traffic(rng, ring):
    """Moves a valid ring to a random place: 0 to 4 laps of messages of
    random sizes, some left unread, maybe a read and a write held open."""
    cells = ring.capacity // 64
    maxm = ring.max_message_size
    target = rng.choice([0, rng.randint(1, cells), rng.randint(cells, 4 * cells)])
    moved = sent = got = 0
    while moved < target:
        size = rng.choice([0, 1, 64, 65, min(200, maxm), maxm, rng.randint(0, maxm)])
        try:
            ring.send_bytes(b"m" * size, block=False)
            moved, sent = moved + size // 64 + 1, sent + 1
        except queue.Full:
            ring.recv_bytes(block=False)
            got += 1
    for _ in range(rng.randint(0, sent - got)):
        ring.recv_bytes(block=False)
        got += 1
    held = []
    if rng.random() < 0.4 and sent > got:
        held.append(f"read of {ring._debug_read_and_hold()} B")
    if rng.random() < 0.25:
        try:
            held.append(f"claim of {ring._debug_claim_and_hold(rng.randint(0, maxm))} B")
        except queue.Full:
            pass
    return f"{ring.kind} capacity {ring.capacity}: {sent} sent, {got} received, held: {held or 'nothing'}"


class Corrupter:
    """The mutation menu.  Each mutation writes through Poke (or the owner
    hook) and returns a line saying what it did, for the failure report."""

    def __init__(self, rng, ring, poke):
        self.rng, self.ring, self.poke = rng, ring, poke
        self.layout = poke.layout
        self.cells = ring.capacity // self.layout["cell"]
        self.maxm = ring.max_message_size
        self.menu = [(self.position, 3), (self.record, 5), (self.slot, 2), (self.owner, 1),
                     (self.waiters, 1), (self.flags, 1), (self.futex, 0.5), (self.scribble, 2),
                     (self.identity, 0.3)]

    def mutate(self):
        funcs, weights = zip(*self.menu)
        return self.rng.choices(funcs, weights)[0]()

    def get(self, field):
        return self.poke.get64(self.layout[field])

    def somewhere(self):
        """A position where records are or were: (description, position)."""
        rng, n = self.rng, self.cells
        name = rng.choice(["head", "cons", "cons", "release", "release"])
        d = rng.choice([0] * 4 + [-1, 1, -n, n, rng.randint(-n, n)])
        return f"{name}{d:+d}", (self.get(name) + d) & U64

    def position(self):
        rng, n = self.rng, self.cells
        field = rng.choice(["head", "cons", "release"])
        if rng.random() < 0.15:  # inverted: two positions swap places
            other = rng.choice([f for f in ("head", "cons", "release") if f != field])
            a, b = self.get(field), self.get(other)
            self.poke.u64(self.layout[field], b)
            self.poke.u64(self.layout[other], a)
            return f"swap {field} ({a}) and {other} ({b})"
        cur = self.get(field)
        value = rng.choice([cur + rng.randint(-3, 3), cur + n, cur - n, cur + n + 1, cur - n - 1,
                            self.get(rng.choice(["head", "cons", "release"])) + rng.randint(-1, 1),
                            0, U64, 2**63, 1 << 60, U64 - rng.randint(0, n), rng.getrandbits(64)]) & U64
        self.poke.u64(self.layout[field], value)
        return f"{field} {cur} -> {value}"

    def length(self):
        """A record length: plausible, at a limit, or where its cell count overflows."""
        rng, n, m = self.rng, self.cells, self.maxm
        return rng.choice(rng.choices([
            [0, 1, 63, 64, 65, rng.randint(0, m)],
            [m - 1, m, m + 1, 64 * n, 64 * n + 1, 64 * rng.randint(1, n)],
            # (length + 63) / 64 wraps round to 0 cells (half the time), or
            # is 2^58 - 1 cells, or larger than any ring
            [U64, U64 - 62, U64 - rng.randint(0, 62), U64 - 63, 2**63, 2**64 - 64 * rng.randint(1, n)],
            [rng.getrandbits(64)],
        ], [1, 1, 1.5, 0.5])[0])

    def record(self):
        """A record's metadata: tag (state, lap) and/or length."""
        rng, n = self.rng, self.cells
        where, p = self.somewhere()
        meta = self.poke.meta(p & (n - 1))
        said = []
        if rng.random() < 0.85:
            state = rng.choice(["committed", "padding", "consumed"])
            lap, tag_pos = rng.choice([("this lap", p)] * 4 + [("last lap", p - n), ("next lap", p + n),
                                      ("next cell", p + 1), ("position 0", 0)])
            tag = self.poke.tag(tag_pos & U64, state)
            if rng.random() < 0.1:
                tag, state = tag & ~3, "no state"
            self.poke.u64(meta + self.layout["meta_tag"], tag)
            said.append(f"tag {state} {lap}")
        if not said or rng.random() < 0.75:
            length = self.length()
            self.poke.u64(meta + self.layout["meta_length"], length)
            said.append(f"length {length}")
        return f"record at {where} (cell {p & (n - 1)}): " + ", ".join(said)

    def owner_value(self):
        """(description, pid, start stamp) of some process, for an owner word."""
        rng, me, parent = self.rng, os.getpid(), os.getppid()
        return rng.choice([
            ("this process", me, process_start(me)),
            ("this pid, start unknown", me, 0),
            ("this pid, other start (reused pid: dead)", me, process_start(me) ^ 1),
            ("live parent", parent, process_start(parent)),
            ("impossible pid", IMPOSSIBLE_PID + rng.randint(0, 1000), rng.getrandbits(32)),
            ("pid 0", 0, rng.getrandbits(32)),
            ("pid -1", 2**32 - 1, 0),
            ("init", 1, 0),
        ])

    def set_owner(self, where, offset):
        if self.rng.random() < 0.2:
            value = self.rng.getrandbits(64)
            self.poke.u64(offset, value)
            return f"{where} owner := garbage {value:#x}"
        what, pid, start = self.owner_value()
        self.ring._debug_set_owner(where, pid, start)
        return f"{where} owner := {what} ({pid}, {start})"

    def slot(self):
        rng, L = self.rng, self.layout
        i = rng.choice([0, 0, 1, 2, rng.randrange(128)])
        base = self.poke.slot(i)
        field = rng.choice(["owner", "produce_intent", "consume_intent", "data_sleepers", "space_sleepers"])
        if field == "owner":
            return self.set_owner(i, base + L["slot_owner"])
        if field.endswith("intent"):
            where, p = self.somewhere()
            value = rng.choice([0, (p + 1) & U64, U64, rng.getrandbits(64)])
            self.poke.u64(base + L["slot_" + field], value)
            return f"slot {i} {field} := {value} ({where} + 1)"
        value = rng.choice([0, 1, 2**32 - 1, rng.getrandbits(32)])
        self.poke.u32(base + L["slot_" + field], value)
        return f"slot {i} {field} := {value}"

    def owner(self):
        where, field = self.rng.choice([("producer", "spsc_producer"), ("consumer", "spsc_consumer"),
                                        ("recovery", "recovery_owner")])
        return self.set_owner(where, self.layout[field])

    def waiters(self):
        rng = self.rng
        field = rng.choice(["data_waiters", "space_waiters"])
        count = rng.choice([1, 2, 2**32 - 1, rng.getrandbits(32)])
        value = rng.choice([rng.getrandbits(32) << 32 | count, rng.getrandbits(64)])
        self.poke.u64(self.layout[field], value)
        return f"{field} := {value:#x}"

    def flags(self):
        value = self.rng.choice([0, 1, 2, 3, 2**32 - 1, self.rng.getrandbits(32)])
        self.poke.u32(self.layout["flags"], value)
        return f"flags := {value:#x}"

    def futex(self):
        field = self.rng.choice(["data_futex", "space_futex"])
        value = self.rng.getrandbits(32)
        self.poke.u32(self.layout[field], value)
        return f"{field} := {value:#x}"

    def scribble(self):
        """Eight random bytes anywhere in header, slots or metadata."""
        offset = self.rng.randrange(0, self.layout["data"]) & ~7
        value = self.rng.choice([self.rng.getrandbits(64), U64, self.length()])
        self.poke.u64(offset, value)
        return f"bytes at {offset} := {value:#x}"

    def identity(self):
        """The header's first line (checked by attach; a live handle never rereads it)."""
        offset = self.rng.randrange(0, self.layout["head"]) & ~7
        value = self.rng.getrandbits(64)
        self.poke.u64(offset, value)
        return f"identity bytes at {offset} := {value:#x}"


def make(seed):
    """The ring of state `seed`, corrupted: (ring, rng to go on with, description)."""
    rng = random.Random(seed)
    ring = Ring(capacity=1 << rng.randint(8, 14), kind=rng.choice(["spsc", "mpmc"]))
    try:
        log = [_traffic(rng, ring)]
        poke = Poke(ring)
        try:
            positions = [f"{f}={poke.get64(poke.layout[f])}" for f in ("head", "cons", "release")]
            log[0] += "; " + " ".join(positions)
            corrupter = Corrupter(rng, ring, poke)
            log += [corrupter.mutate() for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4, 6]))]
        finally:
            poke.close()
    except BaseException:
        ring.close()
        raise
    return ring, rng, "\n".join(log)
