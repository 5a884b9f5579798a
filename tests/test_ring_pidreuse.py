"""A dead holder's pid handed on to another process: recovery must still treat
the holder as dead.  Every role, slot and the recovery lock record the holder
as (pid, start time); a live process with that pid but another start time is
somebody else.

Real pid reuse cannot be forced in a test, so it is modelled: after a holder
dies, its owner word is rewritten to name a live, unrelated process (a
sleeping child of the test) with a start time that is not that process's -
exactly what the segment says once the pid has been given to a newcomer.  The
same scenario with the live process's true start time is the negative case:
a genuinely live holder is waited for, never stolen from."""
import multiprocessing
import os
import queue
import signal
import time

import pytest

import ringipc.core._ring as _ring
from _proc_support import asleep_in, kill_now
from _segment_poke import twin
from ringcheck import NUMBER, drain_numbers, send_numbers
from ringipc import Ring, RingError

ctx = multiprocessing.get_context("fork")




def _start_from_proc(pid):
    """Field 22 of /proc/<pid>/stat, parsed here independently of the C code:
    fields are counted after the last ')', since comm may hold ')' and ' '."""
    with open(f"/proc/{pid}/stat") as f:
        after_comm = f.read().rsplit(")", 1)[1].split()
    return int(after_comm[22 - 3]) & 0xFFFFFFFF


def _other_than(start):
    """A start stamp that is neither `start` nor 0 (0 means "unknown")."""
    return start % 0xFFFFFFFE + 1


def _pause(ready, comm=None):
    if comm is not None:
        with open("/proc/self/comm", "w") as f:
            f.write(comm)
    ready.send(b"ready")
    signal.pause()


def _start_child(target, *args):
    parent_end, child_end = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child_end,) + args)
    proc.start()
    parent_end.recv()
    return proc


@pytest.fixture
def bystander():
    """A live process unrelated to any ring: the newcomer that got a dead
    holder's pid.  Yields (pid, its start stamp)."""
    proc = _start_child(_pause)
    try:
        start = _ring.process_start(proc.pid)
        assert start == _start_from_proc(proc.pid) != 0
        yield proc.pid, start
    finally:
        kill_now(proc)


def _slot_of(ring, pid):
    slots = [i for i, (p, _) in ring._debug_owners()["slots"].items() if p == pid]
    assert len(slots) == 1, ring._debug_owners()
    return slots[0]


def test_start_time_is_read_past_a_comm_with_parentheses_and_spaces():
    child = _start_child(_pause, "x) 1 2 (3) Z")
    try:
        with open(f"/proc/{child.pid}/comm") as f:
            assert f.read().strip() == "x) 1 2 (3) Z"
        start = _ring.process_start(child.pid)
        assert start == _start_from_proc(child.pid) != 0
        assert _ring.pid_alive(child.pid, start)
        assert _ring.pid_alive(child.pid, 0)  # unknown start: the pid alone decides
        assert not _ring.pid_alive(child.pid, _other_than(start))
    finally:
        kill_now(child)
    assert not _ring.pid_alive(child.pid, start)
    assert _ring.process_start(os.getpid()) == _start_from_proc(os.getpid())


def _claim_then_wait(ready, ring, length):
    ring._debug_claim_and_hold(length)
    ready.send(b"claimed")
    signal.pause()


def _read_claim_then_wait(ready, ring):
    ring._debug_read_and_hold()
    ready.send(b"claimed")
    signal.pause()


def test_producer_claim_behind_a_reused_pid_is_recovered(bystander):
    pid, start = bystander
    with Ring(capacity=8192, kind="mpmc") as ring:
        holder = _start_child(_claim_then_wait, ring, 500)
        slot = _slot_of(ring, holder.pid)
        after = list(range(20))
        send_numbers(ring, after)  # committed behind the claim that will never be
        kill_now(holder)
        # The slot names a live process, and it is that process: respected.
        ring._debug_set_owner(slot, pid, start)
        assert ring.recover() == 0
        assert not ring.poll(0)
        # The same pid, but started at another time: the holder is gone.
        ring._debug_set_owner(slot, pid, _other_than(start))
        # No explicit recover(): a reader stalled behind the claim gets there.
        assert [NUMBER.unpack(ring.recv_bytes(timeout=30))[0] for _ in after] == after
        assert drain_numbers(ring) == []
        send_numbers(ring, range(20, 40))
        assert drain_numbers(ring) == list(range(20, 40))


def test_consumer_claim_behind_a_reused_pid_is_recovered(bystander):
    pid, start = bystander
    with Ring(capacity=4096, kind="mpmc") as ring:
        first = list(range(16))
        for n in first:  # 16 x 4 cells: the ring is full
            ring.send_bytes(NUMBER.pack(n) + bytes(192), block=False)
        holder = _start_child(_read_claim_then_wait, ring)
        slot = _slot_of(ring, holder.pid)
        kill_now(holder)  # it took first[0] with it
        ring._debug_set_owner(slot, pid, start)
        assert ring.recover() == 0
        with pytest.raises(queue.Full):
            ring.send_bytes(NUMBER.pack(16), block=False)
        ring._debug_set_owner(slot, pid, _other_than(start))
        # A writer stalled behind the dead reader's claim gets its space back.
        ring.send_bytes(NUMBER.pack(16) + bytes(192), timeout=30)
        got = [NUMBER.unpack_from(ring.recv_bytes(block=False))[0] for _ in range(16)]
        assert got == first[1:] + [16]
        with pytest.raises(queue.Empty):
            ring.recv_bytes(block=False)


def test_recovery_lock_held_under_a_reused_pid_is_taken(bystander):
    pid, start = bystander
    with Ring(capacity=8192, kind="mpmc") as ring:
        holder = _start_child(_claim_then_wait, ring, 300)
        send_numbers(ring, [1, 2, 3])
        kill_now(holder)
        # A live process is recovering: nobody else may pad the same range.
        ring._debug_set_owner("recovery", pid, start)
        assert ring.recover() == 0
        assert not ring.poll(0)
        ring._debug_set_owner("recovery", pid, _other_than(start))
        assert ring.recover() == 1
        assert ring._debug_owners()["recovery"] is None  # given back
        assert drain_numbers(ring) == [1, 2, 3]


def test_recovery_lock_held_by_this_process_is_not_entered_twice():
    """Another thread or handle of this very process holding the lock is
    recovering right now: a second recoverer waits its turn."""
    with Ring(capacity=8192, kind="mpmc") as ring:
        holder = _start_child(_claim_then_wait, ring, 300)
        send_numbers(ring, [1, 2, 3])
        kill_now(holder)
        ring._debug_set_owner("recovery", os.getpid(), _ring.process_start(os.getpid()))
        ring._debug_pretend_recovering(True)
        try:
            assert ring.recover() == 0
            assert not ring.poll(0)
        finally:
            ring._debug_pretend_recovering(False)
        ring._debug_set_owner("recovery", 0, 0)  # that recoverer is done
        assert ring.recover() == 1
        assert drain_numbers(ring) == [1, 2, 3]


def _take_role(ready, ring, side):
    if side == "producer":
        send_numbers(ring, [0, 1])
    else:
        assert NUMBER.unpack(ring.recv_bytes())[0] == 0
    ready.send(b"holding")
    signal.pause()


@pytest.mark.parametrize("side", ["producer", "consumer"])
def test_spsc_role_held_under_a_reused_pid_is_taken_over(bystander, side):
    pid, start = bystander
    with Ring(capacity=4096, kind="spsc") as ring:
        if side == "consumer":
            send_numbers(ring, [0, 1, 2])  # this process is the producer
        holder = _start_child(_take_role, ring, side)
        assert ring._debug_owners()[side] == (holder.pid, _ring.process_start(holder.pid))
        kill_now(holder)
        with twin(ring) as successor:
            ring._debug_set_owner(side, pid, start)
            with pytest.raises(RingError, match="another live process"):
                if side == "producer":
                    successor.send_bytes(NUMBER.pack(2), block=False)
                else:
                    successor.recv_bytes(block=False)
            ring._debug_set_owner(side, pid, _other_than(start))
            if side == "producer":
                send_numbers(successor, [2, 3], block=False)
                assert drain_numbers(ring) == [0, 1, 2, 3]
            else:
                assert drain_numbers(successor) == [1, 2]
            assert ring._debug_owners()[side] == (os.getpid(), _ring.process_start(os.getpid()))


def test_own_pid_recorded_by_an_earlier_process_is_not_ours():
    """This process may itself be the newcomer that got a dead holder's pid:
    a role recorded under our pid but another start time is a dead one's."""
    me, my_start = os.getpid(), _ring.process_start(os.getpid())
    with Ring(capacity=4096, kind="spsc") as ring:
        ring._debug_set_owner("producer", me, _other_than(my_start))
        ring._debug_set_owner("consumer", me, _other_than(my_start))
        send_numbers(ring, [5, 6], block=False)
        assert drain_numbers(ring) == [5, 6]
        owners = ring._debug_owners()
        assert owners["producer"] == owners["consumer"] == (me, my_start)


def test_slots_held_under_reused_pids_are_reused(bystander):
    pid, start = bystander
    with Ring(capacity=4096, kind="mpmc") as ring:
        for i in range(_ring.MAX_SLOTS):
            ring._debug_set_owner(i, pid, start)
        with pytest.raises(RingError, match="live processes"):
            ring.send_bytes(b"no slot", block=False)
        for i in range(_ring.MAX_SLOTS):
            ring._debug_set_owner(i, pid, _other_than(start))
        send_numbers(ring, [7], block=False)
        assert drain_numbers(ring) == [7]


def _sleep_in_wait(ready, ring):
    _ring.WAIT_SLICE = 3600.0  # one slice: the kill lands in the sleep
    ring.spin = 0
    ready.send(b"going to sleep")
    ring.recv_bytes()  # the ring is empty
    os._exit(1)


def test_sleeper_counted_under_a_reused_pid_is_uncounted(bystander):
    pid, start = bystander
    with Ring(capacity=4096, kind="mpmc") as ring:
        assert drain_numbers(ring) == []  # hold a slot first: the sleeper takes another
        sleeper = _start_child(_sleep_in_wait, ring)
        give_up = time.monotonic() + 60
        while not (asleep_in(f"/proc/{sleeper.pid}", "futex") and ring._debug_sleepers()["data"] == 1):
            assert time.monotonic() < give_up, ring._debug_sleepers()
            os.sched_yield()
        slot = _slot_of(ring, sleeper.pid)
        kill_now(sleeper)
        ring._debug_set_owner(slot, pid, start)
        ring.recover()  # recounts: a live owner's count is kept
        assert ring._debug_sleepers()["data"] == 1
        ring._debug_set_owner(slot, pid, _other_than(start))
        ring.recover()
        assert ring._debug_sleepers()["data"] == 0
        send_numbers(ring, range(10))
        assert drain_numbers(ring) == list(range(10))
        assert ring._debug_sleepers()["data"] == 0
