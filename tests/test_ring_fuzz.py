"""Corruption fuzzer with hang detection: random corrupt segments (made by
tests/_corrupt_states.py from a seed), each attached and driven with
non-blocking and short-timeout calls in a forked worker with a deadline
(tests/_forked_checks.py).  A hang, a crash or an exception outside ringipc's
documented classes fails the test and names the seed.

    RINGIPC_FUZZ_STATES=100000 python -m pytest tests/test_ring_fuzz.py   # more states
    RINGIPC_FUZZ_FIRST=500000 ...                                        # other seeds
    RINGIPC_FUZZ_SEED=1234 python -m pytest tests/test_ring_fuzz.py -s    # replay one

In a debugger: ``from _forked_checks import Note; exercise(1234, Note())``
runs one state in-process (a hang then hangs).  The ASan CI job runs part.
"""
import faulthandler
import os
import signal
import time

import pytest

from _corrupt_states import ALLOWED, make
from _forked_checks import run
from _segment_poke import Poke, twin

from ringipc import CorruptSegment, Ring

STATES = int(os.environ.get("RINGIPC_FUZZ_STATES", "10000"))
FIRST = int(os.environ.get("RINGIPC_FUZZ_FIRST", "0"))
REPLAY = os.environ.get("RINGIPC_FUZZ_SEED")
# States in which some calls wait with a short timeout instead of block=False:
# one call per handle and round, two at most (each may wait its whole timeout).
TIMED_SHARE = 1 / 8


def _calls(rng, h, timed_left):
    """Every call under test on handle h with random arguments, in random
    order, as (description, thunk).  None may block longer than its timeout."""
    maxm = h.max_message_size

    def size():
        return rng.choice([0, 1, 63, 64, 65, maxm - 1, maxm, maxm + 1, rng.randint(0, maxm)])

    def read_view(kw):
        with h.recv_view(**kw) as view:
            view.tobytes()  # every byte: a view reaching past the segment faults here

    def write_view(k, kw):
        with h.send_view(k, **kw) as view, memoryview(view) as m:
            m[:] = b"w" * k

    # Batches long enough to fill or drain the ring now and then: writers
    # that find it full and readers that finish a record both free space,
    # which is where a corrupt record at release is looked at.
    n, k, k2 = size(), size(), size()
    many, batch = rng.choice([1, 4, h.capacity // 64 + 1]), rng.choice([2, h.capacity // 64 + 1])
    w = [{"block": False}] * 8  # each call that can wait; a timed state's budget turns one into a timeout
    if timed_left[0]:
        timed_left[0] -= 1
        w[rng.randrange(8)] = {"timeout": round(rng.uniform(0.002, 0.02), 4)}
    calls = [
        (f"recv_bytes({w[0]})", lambda: h.recv_bytes(**w[0])),
        (f"recv_bytes_into(bytearray({n}), {w[1]})", lambda: h.recv_bytes_into(bytearray(n), **w[1])),
        (f"recv_bytes_many({many}, {w[2]})", lambda: h.recv_bytes_many(many, **w[2])),
        (f"send_bytes({k} B, {w[3]})", lambda: h.send_bytes(b"y" * k, **w[3])),
        (f"send_bytes_many({batch} x [{k} B, {k2} B], {w[7]})",
         lambda: h.send_bytes_many([b"z" * k, b"z" * k2] * (batch // 2), **w[7])),
        (f"poll({w[4].get('timeout', 0)})", lambda: h.poll(w[4].get("timeout", 0))),
        ("recover()", h.recover),
        ("used_bytes()", h.used_bytes),
        (f"recv_view({w[5]})", lambda: read_view(w[5])),
        (f"send_view({k2}, {w[6]})", lambda: write_view(k2, w[6])),
    ]
    rng.shuffle(calls)
    return calls


def _call(note, step, thunk):
    """Runs one call; only ringipc's documented exceptions may come out."""
    note.step(step)
    try:
        return thunk()
    except ALLOWED as exc:
        if "unexpected status" in str(exc):  # RingError's catch-all: a status nobody maps
            raise
        return exc


def exercise(seed, note):
    """State `seed`: attach to it and make every call, on the new handle and
    sometimes on the handle that created (and corrupted) the ring."""
    note.state(f"seed {seed}: being made")
    ring, rng, description = make(seed)
    note.state(f"seed {seed}: {description}")
    other = None
    try:
        other = _call(note, "Ring.attach", lambda: twin(ring))
        if not isinstance(other, Ring):
            assert isinstance(other, CorruptSegment), other
            other = None
        timed_left = [2 if rng.random() < TIMED_SHARE else 0]
        handles = [("attached", other)] if other is not None else []
        if other is None or rng.random() < 0.4:
            handles.append(("creator", ring))
        # Two rounds: the first one's sends and receives may bring the ring
        # to where the corruption bites (full, so writers free space; a
        # record read, so release moves).
        for label, h in handles * 2:
            for step, thunk in _calls(rng, h, timed_left):
                _call(note, f"{label} handle: {step}", thunk)
    finally:
        note.step("close")
        if other is not None:
            other.close()
        ring.close()


def _assert_clean(failures, replay=""):
    if failures:  # the report alone: pytest's dump of the locals would bury it
        pytest.fail("\n\n".join(
            f"{f}" + (f"\n  replay: RINGIPC_FUZZ_SEED={f.number} python -m pytest {replay} -s" if replay else "")
            for f in sorted(failures, key=lambda f: f.number)), pytrace=False)


def test_corrupt_states_never_hang_crash_or_raise_undocumented():
    seeds = [int(REPLAY)] if REPLAY is not None else range(FIRST, FIRST + STATES)
    started = time.monotonic()
    failures, finished = run(exercise, seeds)
    took = time.monotonic() - started
    print(f"{finished} corrupt states in {took:.1f} s ({finished / took:.0f} states/s)")
    _assert_clean(failures, f"{__file__}::test_corrupt_states_never_hang_crash_or_raise_undocumented")


def _misbehave(n, note):
    note.state(f"number {n}")
    if n == 1:
        raise KeyError("undocumented")
    if n == 2:
        faulthandler.disable()  # pytest's would print this expected crash's stack
        os.kill(os.getpid(), signal.SIGSEGV)
    while n == 3:  # a spin no signal handler can interrupt is what the deadline is for
        pass


def test_the_harness_names_each_hang_crash_and_exception():
    # A crash under ASan takes a while to report (symbolizing, on a loaded
    # machine over a second): the hang limit leaves room for it.
    failures, finished = run(_misbehave, range(6), workers=2, hang_after=5.0)
    got = sorted((f.number, f.what) for f in failures)
    assert got == [(1, "exception"), (2, "crash"), (3, "hang")], failures
    assert finished == 3  # 0, 4 and 5: workers after a failure take over the rest
    assert "KeyError" in failures[[f.number for f in failures].index(1)].detail
    # SIGSEGV, or SIGABRT under ASan: it catches the SEGV, reports, and aborts
    assert "died of signal SIG" in failures[[f.number for f in failures].index(2)].detail


# -- regressions: states the fuzzer found spinning forever with the GIL held --

def _poked(ring, writes):
    poke = Poke(ring)
    try:
        for field, cell, value in writes:
            offset = poke.layout[field] if cell is None else poke.meta(cell) + poke.layout[field]
            poke.u64(offset, value(poke) if callable(value) else value)
    finally:
        poke.close()


def _consumed_tag_at_cons(_, note):
    note.state("mpmc ring, head == cons == release == 0, meta[0] tagged CONSUMED at position 0")
    with Ring(capacity=4096, kind="mpmc") as ring:
        _poked(ring, [("meta_tag", 0, lambda p: p.tag(0, "consumed"))])
        for step, call in [("recv_bytes", lambda: ring.recv_bytes(block=False)),
                           ("recv_bytes(timeout)", lambda: ring.recv_bytes(timeout=0.01)),
                           ("recv_bytes_many", lambda: ring.recv_bytes_many(4, block=False)),
                           ("recv_view", lambda: ring.recv_view(block=False).release())]:
            assert isinstance(_call(note, step, call), ALLOWED), "read a message nobody sent"


def test_consumed_tag_at_cons_does_not_spin():
    """The tag at cons says CONSUMED at cons's own position, which only a
    reader that moved cons past it could have written: an MPMC reader took it
    for a race lost to another reader and reloaded cons, forever."""
    _assert_clean(run(_consumed_tag_at_cons, [0], workers=1)[0])


def _consumed_record_of_wrapping_length(length):
    def check(_, note):
        note.state(f"mpmc ring, release 0 < cons == head == 1, meta[0] CONSUMED at 0 with length {length}")
        with Ring(capacity=4096, kind="mpmc") as ring:
            ring.send_bytes(b"x")
            _poked(ring, [("meta_tag", 0, lambda p: p.tag(0, "consumed")), ("meta_length", 0, length),
                          ("cons", None, 1)])
            _call(note, "recover", ring.recover)
            for i in range(ring.capacity // 64):  # fill up, so writers must advance release
                if isinstance(_call(note, f"send_bytes #{i}", lambda: ring.send_bytes(b"y", block=False)), ALLOWED):
                    break
    return check


@pytest.mark.parametrize("length", [2**64 - 63, 2**64 - 1])
def test_consumed_record_of_wrapping_length_at_release_does_not_spin(length):
    """A length within 63 of 2^64 rounds up to 0 cells, so moving release past
    the record moved it nowhere, and the loop that frees records never ended."""
    _assert_clean(run(_consumed_record_of_wrapping_length(length), [0], workers=1)[0])
