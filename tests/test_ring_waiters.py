"""Processes SIGKILLed while asleep in a ring's wait: they must not stay counted
as sleepers, or every later commit or release by every peer pays a wake-up
system call.  Each test kills a sleeper while the kernel shows it asleep in the
futex and the header counts it, lets survivors take its count back (recovery,
takeover of its role or slot, or plain traffic), and checks that later messages
still arrive exactly once."""
import mmap
import multiprocessing
import os
import queue
import signal
import struct
import time

import pytest

from _proc_support import asleep_in, reap
from _segment_poke import twin
from ringcheck import NUMBER, drain_numbers, send_numbers
import ringipc.core._ring as _ring
from ringipc import Ring

ctx = multiprocessing.get_context("fork")
CAPACITY = 1 << 17                # room for the notifies the traffic heal takes
CELL = 64
FITS = CAPACITY // CELL          # 8-byte messages take one cell each




def _sleep_in_wait(ring, side):
    """Child: go to sleep in the ring's wait and stay there in one slice."""
    _ring.WAIT_SLICE = 3600.0  # no wake-up between slices: the kill lands in the sleep
    ring.spin = 0
    if side == "consumer":
        ring.recv_bytes()          # the ring is empty
    else:
        send_numbers(ring, range(FITS), block=False)
        ring.send_bytes(NUMBER.pack(FITS))  # the ring is full
    os._exit(1)  # never reached while nobody else uses the ring


# Notifies before traffic alone takes a dead sleeper's count back: one wake-up
# (for nobody), then a run of notifies that find no wake-up wanted.
_HEAL_AFTER = 1 + _ring.RECOUNT_AFTER_SKIPPED_WAKES


def _direction(side):
    return "data" if side == "consumer" else "space"


def _until_counted_asleep(ring, pid, side, dead_slots=0, limit=30.0):
    """Poll (the kernel's view and the header, never a sleep) until the child
    sleeps in the futex and is the one sleeper the header counts (beside
    `dead_slots` slots of dead processes)."""
    give_up = time.monotonic() + limit
    while time.monotonic() < give_up:
        asleep = asleep_in(f"/proc/{pid}", "futex")
        counts = ring._debug_sleepers()
        if asleep and counts[_direction(side)] == 1 and [s[0] for s in counts["slots"]][:1] == [pid] \
                and len(counts["slots"]) == 1 + dead_slots:
            return
        os.sched_yield()
    raise AssertionError(f"the child never went to sleep counted in the ring: {ring._debug_sleepers()}")


def _kill_sleeper(ring, side):
    child = ctx.Process(target=_sleep_in_wait, args=(ring, side))
    child.start()
    _until_counted_asleep(ring, child.pid, side)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    # The defect this file is about: the dead sleeper is still counted.
    assert ring._debug_sleepers()[_direction(side)] == 1


def _uncounted(ring):
    counts = ring._debug_sleepers()
    return counts["data"] == 0 and counts["space"] == 0


def _take_over(ring, side):
    """A new handle does the dead child's job: takes its SPSC role or its slot."""
    with twin(ring) as other:
        if side == "consumer":
            with pytest.raises(queue.Empty):
                other.recv_bytes(block=False)
        else:
            with pytest.raises(queue.Full):
                other.send_bytes(b"late", block=False)
        assert _uncounted(ring)


@pytest.mark.parametrize("kind", ["spsc", "mpmc"])
@pytest.mark.parametrize("side", ["consumer", "producer"])
@pytest.mark.parametrize("heal", ["recover", "takeover", "traffic"])
def test_sleeper_killed_is_uncounted(kind, side, heal):
    with Ring(capacity=CAPACITY, kind=kind) as ring:
        if kind == "mpmc":
            # Hold a slot before the child takes one, so only "takeover" reuses its slot.
            ring.send_bytes(b"")
            assert ring.recv_bytes() == b""
        _kill_sleeper(ring, side)
        sent = []
        if heal == "recover":
            ring.recover()
            assert _uncounted(ring)
        elif heal == "takeover":
            _take_over(ring, side)
        elif side == "consumer":
            # A live producer's commits each find only the dead sleeper counted:
            # the first wakes it (nobody), the rest find no wake-up wanted.
            sent = list(range(_HEAL_AFTER))
            send_numbers(ring, sent)
            assert _uncounted(ring)
        else:
            # A live consumer's releases each find only the dead sleeper counted.
            got = [NUMBER.unpack(ring.recv_bytes(block=False))[0]
                   for _ in range(_HEAL_AFTER)]
            assert _uncounted(ring)
            assert got == list(range(len(got)))
            assert drain_numbers(ring) == list(range(len(got), FITS))
        if side == "producer" and heal != "traffic":
            # Everything the dead producer committed arrives, once, in order.
            assert drain_numbers(ring) == list(range(FITS))
        # Live peers carry on: exactly once, in order, and nobody counted asleep.
        more = list(range(len(sent), len(sent) + FITS // 4))  # fits beside `sent`
        send_numbers(ring, more, block=False)
        assert drain_numbers(ring) == sent + more
        assert _uncounted(ring)


def test_live_sleeper_stays_counted_through_recounts():
    """A recount takes back only the dead: a live sleeper keeps its
    registration (and so its wake-up) however often peers recount."""
    with Ring(capacity=CAPACITY, kind="mpmc") as ring:
        ring.send_bytes(b"")
        ring.recv_bytes()
        parent_end, child_end = ctx.Pipe()
        child = ctx.Process(target=_sleep_and_report, args=(ring, child_end))
        child.start()
        try:
            _until_counted_asleep(ring, child.pid, "consumer")
            for _ in range(3):
                ring.recover()
                assert ring._debug_sleepers()["data"] == 1
            ring.send_bytes(b"wake")
            assert parent_end.poll(30), "the live sleeper lost its wake-up"
            assert parent_end.recv() == b"wake"
        finally:
            reap(child)
        assert child.exitcode == 0
        assert _uncounted(ring)


def _sleep_and_report(ring, report, side="consumer"):
    _ring.WAIT_SLICE = 3600.0  # only the wake-up can end this wait promptly
    ring.spin = 0
    if side == "consumer":
        report.send(ring.recv_bytes())
    else:
        send_numbers(ring, range(FITS), block=False)
        ring.send_bytes(NUMBER.pack(FITS))
        report.send(b"sent")
    ring.close()


def _dead_pid():
    child = ctx.Process(target=os._exit, args=(0,))
    child.start()
    child.join()
    return child.pid


@pytest.mark.parametrize("side", ["consumer", "producer"])
def test_killed_between_slot_and_header_steps_subtracts_nothing(side):
    """A sleeper counts itself in its slot before the header and uncounts
    itself from the header before the slot: killed between the two steps it
    leaves a slot that claims a sleeper the header never counted.  A recount
    must not take that from the live sleeper's registration."""
    with Ring(capacity=CAPACITY, kind="mpmc") as ring:
        ring.send_bytes(b"")
        ring.recv_bytes()
        layout = ring._debug_layout()
        fd = os.open(ring._debug_segment_path(), os.O_RDWR)
        try:
            segment = mmap.mmap(fd, layout["segment_size"])
            # Slot 100 (unused here): a dead process's count, absent from the header.
            slot = layout["slots"] + 100 * layout["slot_stride"]
            struct.pack_into("=Q", segment, slot + layout["slot_owner"], _dead_pid())  # start 0: unknown
            struct.pack_into("<I", segment, slot + layout["slot_" + _direction(side) + "_sleepers"], 1)
            segment.close()
        finally:
            os.close(fd)
        parent_end, child_end = ctx.Pipe()
        child = ctx.Process(target=_sleep_and_report, args=(ring, child_end, side))
        child.start()
        try:
            _until_counted_asleep(ring, child.pid, side, dead_slots=1)
            ring.recover()
            assert ring._debug_sleepers()[_direction(side)] == 1  # the live sleeper's
            if side == "consumer":
                ring.send_bytes(NUMBER.pack(7))
            else:  # exactly FITS: the woken producer's next message may follow at once
                assert [NUMBER.unpack(ring.recv_bytes(block=False))[0] for _ in range(FITS)] == list(range(FITS))
            assert parent_end.poll(30), "the live sleeper lost its wake-up"
            assert parent_end.recv() == (NUMBER.pack(7) if side == "consumer" else b"sent")
        finally:
            reap(child)
        assert child.exitcode == 0
        assert drain_numbers(ring) == ([] if side == "consumer" else [FITS])
        assert _uncounted(ring)
