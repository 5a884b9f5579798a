"""A kill storm on one MPMC ring: producers and consumers SIGKILLed at random
moments while traffic flows (over a hundred kills, both kinds), each replaced
at once so the work goes on.  Producers number their messages (ringcheck's
format, one producer id per incarnation); consumers report what they received
through a pipe with atomic writes.  Checked: nothing is delivered twice; what
each producer incarnation got through is a gap-free prefix of what it sent,
but for at most one message per killed consumer (one claimed, or received and
not yet reported, when it died); and no survivor's timeout fires while
messages flow - a ring left stuck behind a dead process's claim would."""
import collections
import mmap
import multiprocessing
import multiprocessing.connection
import os
import queue
import random
import select
import signal
import struct
import time
import zlib

from _proc_support import reap
from _soak_support import TIMED_OUT, read_reports, reap_all, report, soak_limit
from ringipc import Ring
from ringipc._ring import MAX_SLOTS

import ringcheck

ctx = multiprocessing.get_context("fork")
SEED = int(os.environ.get("RINGIPC_STORM_SEED", random.SystemRandom().randrange(1 << 32)))
PRODUCERS = CONSUMERS = 4      # four a side: the waiters wake each other, as in the recovery matrix
KILLS = 120
PER_INCARNATION = 2000         # messages a producer sends before it ends (and is replaced)
MAX_PAYLOAD = 1500
TIMEOUT = 2.0                  # every survivor's send and receive wait
GAP = 600                      # reports between two kills: random in [1, GAP)
SLACK = 1.0                    # how far past its timeout a wait may return on a loaded machine
SEND_TIMED_OUT, SEND_OVERSHOT = 3, 4   # a producer's exit status when a send timed out / overshot
OVERSHOT = TIMED_OUT - 1       # REPORT producer id: a receive timed out late, `seq` ns after it began


def _produce(ring, producer):
    for seq in range(PER_INCARNATION):
        began = time.monotonic()
        try:
            if seq % 2:
                ring.send_bytes(ringcheck.make_message(producer, seq, MAX_PAYLOAD), timeout=TIMEOUT)
            else:  # built in place, as zero-copy users do: the claim is open meanwhile
                size = ringcheck.HEADER.size + ringcheck.payload_size(producer, seq, MAX_PAYLOAD)
                with ring.send_view(size, timeout=TIMEOUT) as view:
                    memoryview(view)[:] = ringcheck.make_message(producer, seq, MAX_PAYLOAD)
        except queue.Full:
            os._exit(SEND_TIMED_OUT)
        if time.monotonic() - began > TIMEOUT + SLACK:
            os._exit(SEND_OVERSHOT)


def _checked(message):
    producer, seq, crc = ringcheck.HEADER.unpack_from(message)
    assert producer == ringcheck.STOP or zlib.crc32(message[ringcheck.HEADER.size:]) == crc, \
        f"corrupt payload from producer {producer} seq {seq}"
    return producer, seq


def _take(ring, n, report_fd):
    """Receive, check and report one message; its producer id, or None on a timeout."""
    try:
        if n % 2:
            producer, seq = _checked(ring.recv_bytes(timeout=TIMEOUT))
        else:  # checked and reported in place, the claim held: a kill can land meanwhile
            with ring.recv_view(timeout=TIMEOUT) as view, memoryview(view) as data:
                producer, seq = _checked(data)
                if producer != ringcheck.STOP:
                    report(report_fd, producer, seq)
                return producer
    except queue.Empty:
        return None
    if producer != ringcheck.STOP:
        report(report_fd, producer, seq)
    return producer


def _consume(ring, report_fd):
    n = 0
    while True:
        began = time.monotonic_ns()
        producer = _take(ring, n, report_fd)
        if producer is None:
            now = time.monotonic_ns()
            report(report_fd, TIMED_OUT, now)
            if now - began > (TIMEOUT + SLACK) * 1e9:
                report(report_fd, OVERSHOT, now - began)
            continue
        if producer == ringcheck.STOP:
            return
        n += 1


class _Slots:
    """The processes' slots in the segment, read from outside: whether one
    has a claim open (its intent is set) or sleeps in a wait (counted)."""

    def __init__(self, ring):
        self.lay = ring._debug_layout()
        self.fd = os.open("/dev/shm/" + ring.name, os.O_RDONLY)
        self.map = mmap.mmap(self.fd, self.lay["segment_size"], prot=mmap.PROT_READ)

    def _word(self, base, field, fmt="<Q"):
        return struct.unpack_from(fmt, self.map, base + self.lay[field])[0]

    def _slot(self, pid):
        for i in range(MAX_SLOTS):
            base = self.lay["slots"] + i * self.lay["slot_stride"]
            if self._word(base, "slot_owner", "<I") == pid:
                return base
        return None

    def aim(self, pid, kind, polls=20000):
        """Poll (yielding, never sleeping) until `pid` holds a claim, up to `polls` looks."""
        base = self._slot(pid)
        field = "slot_produce_intent" if kind == "producer" else "slot_consume_intent"
        for _ in range(polls if base is not None else 0):
            if self._word(base, field):
                return
            os.sched_yield()

    def state(self, pid):
        """Where a dead process was: "in a claim", "asleep", "elsewhere" or "no slot" yet."""
        base = self._slot(pid)
        if base is None:
            return "no slot"
        if self._word(base, "slot_produce_intent") or self._word(base, "slot_consume_intent"):
            return "in a claim"
        if self._word(base, "slot_data_sleepers", "<I") or self._word(base, "slot_space_sleepers", "<I"):
            return "asleep"
        return "elsewhere"

    def close(self):
        self.map.close()
        os.close(self.fd)


class _Storm:
    def __init__(self, ring, report_fd):
        self.ring, self.report_fd = ring, report_fd
        self.producers, self.consumers = {}, []
        self.next_id = 0
        self.finished = []       # producer incarnations that sent all their messages

    def start_producer(self):
        proc = ctx.Process(target=_produce, args=(self.ring, self.next_id))
        proc.start()
        self.producers[self.next_id] = proc
        self.next_id += 1

    def start_consumer(self):
        proc = ctx.Process(target=_consume, args=(self.ring, self.report_fd))
        proc.start()
        self.consumers.append(proc)

    def replace_finished(self, restart):
        for pid, proc in list(self.producers.items()):
            if proc.exitcode is not None:
                self.ended(pid, restart)
        assert all(proc.exitcode is None for proc in self.consumers), "a consumer ended without a STOP"

    def ended(self, pid, restart):
        proc = self.producers.pop(pid)
        reap(proc)
        why = {SEND_TIMED_OUT: ": a send timed out while consumers ran",
               SEND_OVERSHOT: f": a send blocked past its {TIMEOUT} s timeout"}.get(proc.exitcode, "")
        assert proc.exitcode == 0, f"producer {pid} ended with {proc.exitcode}{why}"
        self.finished.append(pid)
        if restart:
            self.start_producer()

    def kill(self, kind, rng, slots):
        """SIGKILL a random producer or consumer - at once, or half the time
        the moment it is seen holding a claim - start its replacement, and say
        where the kill landed (None if the victim had just ended by itself)."""
        if kind == "producer":
            pid, victim = rng.choice(sorted(self.producers.items()))
        else:
            victim = rng.choice(self.consumers)
        if rng.random() < 0.5:
            slots.aim(victim.pid, kind)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        if victim.exitcode != -signal.SIGKILL:  # it had ended on its own
            if kind == "consumer":
                raise AssertionError(f"a consumer ended with {victim.exitcode} without a STOP")
            self.ended(pid, restart=True)
            return None
        where = slots.state(victim.pid)
        if kind == "producer":
            del self.producers[pid]
            self.start_producer()
        else:
            self.consumers.remove(victim)
            self.start_consumer()
        return where

    def sentinels(self):
        return [proc.sentinel for proc in self.producers.values()] + [proc.sentinel for proc in self.consumers]


class _Received:
    def __init__(self):
        self.seqs = collections.defaultdict(set)
        self.timeouts = []
        self.overshoots = []

    def add(self, items):
        for producer, seq in items:
            if producer == TIMED_OUT:
                self.timeouts.append(seq / 1e9)
                continue
            if producer == OVERSHOT:
                self.overshoots.append(seq / 1e9)
                continue
            assert seq not in self.seqs[producer], f"producer {producer} seq {seq} delivered twice"
            self.seqs[producer].add(seq)
        return len(items)


def test_kill_storm():
    print(f"\nkill storm seed {SEED} (RINGIPC_STORM_SEED={SEED} to replay the choices)")
    rng = random.Random(SEED)
    limit = soak_limit(60)
    read_fd, write_fd = os.pipe()
    received, pending = _Received(), b""
    kills = collections.Counter()
    started = time.monotonic()
    with Ring(1 << 14, kind="mpmc") as ring:
        storm, slots = _Storm(ring, write_fd), _Slots(ring)
        try:
            for _ in range(CONSUMERS):
                storm.start_consumer()
            for _ in range(PRODUCERS):
                storm.start_producer()
            flowing_since = time.monotonic()
            countdown = rng.randrange(1, GAP)
            while sum(kills.values()) < KILLS:
                items, pending = read_reports(read_fd, pending, limit)
                countdown -= received.add(items)
                storm.replace_finished(restart=True)
                if countdown > 0:
                    continue
                kind = rng.choice(("producer", "consumer"))
                where = storm.kill(kind, rng, slots)
                if where is not None:
                    kills[kind, where] += 1
                countdown = rng.randrange(1, GAP)
            os.close(write_fd)  # no consumer is started after this
            write_fd, items = None, []
            while storm.producers:  # the last incarnations send all they have
                multiprocessing.connection.wait([read_fd] + storm.sentinels(), limit)
                if select.select([read_fd], [], [], 0)[0]:
                    items, pending = read_reports(read_fd, pending)
                    received.add(items)
                storm.replace_finished(restart=False)
            flow_ended = time.monotonic()
            for _ in storm.consumers:
                ring.send_bytes(ringcheck.stop_message(), timeout=limit)
            while items is not None:  # every consumer ends: read to EOF
                items, pending = read_reports(read_fd, pending, limit)
                received.add(items or [])
            assert not reap_all(storm.consumers, limit)
            assert all(proc.exitcode == 0 for proc in storm.consumers)
        finally:
            print(f"{time.monotonic() - started:.1f} s, {sum(map(len, received.seqs.values()))} messages from "
                  f"{storm.next_id} producer incarnations; SIGKILLs by where they landed: {dict(sorted(kills.items()))}")
            for proc in list(storm.producers.values()) + storm.consumers:
                reap(proc, 0)
            slots.close()
            os.close(read_fd)
            if write_fd is not None:
                os.close(write_fd)
    _check(received, storm, kills, flowing_since, flow_ended)


def _check(received, storm, kills, flowing_since, flow_ended):
    consumer_kills = sum(n for (kind, _), n in kills.items() if kind == "consumer")
    producer_kills = sum(kills.values()) - consumer_kills
    assert producer_kills >= KILLS // 4 and consumer_kills >= KILLS // 4, "both kinds must die often"
    missing = {}  # producer -> the gaps in what it got through (a killed one's: below its last)
    for producer in range(storm.next_id):
        seqs = received.seqs.get(producer, set())
        sent_at_least = PER_INCARNATION if producer in storm.finished else max(seqs, default=-1) + 1
        if len(seqs) < sent_at_least:
            missing[producer] = sorted(set(range(sent_at_least)) - seqs)
    lost = sum(map(len, missing.values()))
    print(f"lost to killed consumers: {lost} of at most {consumer_kills}")
    assert lost <= consumer_kills, f"{lost} messages lost, {consumer_kills} consumers killed: {missing}"
    assert not received.overshoots, f"receives blocked past their {TIMEOUT} s timeout: {received.overshoots} s"
    # A receive timeout needs TIMEOUT seconds without a message while producers
    # sent all along: only a ring stuck behind a dead claim (or a lost wake-up).
    stuck = [round(t - flowing_since, 2) for t in received.timeouts
             if flowing_since + TIMEOUT <= t <= flow_ended]
    assert not stuck, f"receive timeouts while messages flowed, at {stuck} s into the storm"
