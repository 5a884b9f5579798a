"""Pipe's peer-death check without a system call per message: a send looks
at the liveness socket at most every PEER_CHECK seconds, so a dead peer is
reported within that bound and a stream of sends costs a handful of polls."""
import multiprocessing
import signal
import time

from ringipc import Pipe
from ringipc.mp.connection import PEER_CHECK

ctx = multiprocessing.get_context("fork")


class _CountingPoller:
    def __init__(self, poller):
        self.poller, self.calls = poller, 0

    def poll(self, *args):
        self.calls += 1
        return self.poller.poll(*args)

    def __getattr__(self, name):
        return getattr(self.poller, name)


def _hold(end, ready):
    ready.send(b"up")
    signal.pause()


def test_sends_cost_a_poll_per_interval_not_per_message():
    a, b = Pipe()
    try:
        counting = a._poller = _CountingPoller(a._poller)
        began = time.monotonic()
        for i in range(20000):
            a.send_bytes(b"x" * 64)
            if i % 100 == 99:
                for _ in range(100):
                    b.recv_bytes()
        elapsed = time.monotonic() - began
        assert counting.calls <= elapsed / PEER_CHECK + 2, (counting.calls, elapsed)
    finally:
        a.close()
        b.close()


def test_a_dead_peer_is_reported_within_the_bound():
    a, b = Pipe()
    ready_r, ready_w = ctx.Pipe(False)
    holder = ctx.Process(target=_hold, args=(b, ready_w))
    holder.start()
    b.close()
    ready_r.recv()
    a.send_bytes(b"before")  # checks now: the peer lives
    holder.kill()
    holder.join()
    died = time.monotonic()
    sent = 0
    try:
        while True:
            a.send_bytes(b"after")
            sent += 1
            assert time.monotonic() - died < PEER_CHECK + 1.0, "sends to a dead peer went on past the bound"
    except BrokenPipeError:
        pass
    # Within the bound only: at most PEER_CHECK's worth of sends were lost with the peer.
    assert time.monotonic() - died < PEER_CHECK + 1.0
    a.close()


# -- wait() sleeps on the rings' doorbells -------------------------------------------

def _send_one_later(end, go):
    go.recv_bytes()
    end.send("late")
    signal.pause()


def test_wait_sleeps_on_doorbells_and_leaves_none_armed():
    """wait(None) on ring Connections returns for a message sent by another
    process after the wait began (a doorbell, not a poll: there is no
    timeout to poll with), then for its death; no bell stays armed."""
    from ringipc.mp.waiting import wait

    a, b = Pipe()
    c, d = Pipe()
    go_r, go_w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_send_one_later, args=(b, go_r))
    p.start()
    b.close()
    try:
        assert wait([a, c], 0) == []
        go_w.send_bytes(b"go")  # the child sends while (or before) we wait
        assert wait([a, c]) == [a]
        assert a._rx._debug_sleepers()["data_bells"] == 0
        assert c._rx._debug_sleepers()["data_bells"] == 0
        assert a.recv() == "late"
        p.kill()
        p.join(10)
        assert wait([a, c]) == [a]  # the peer is gone: EOF is ready
        assert a._rx._debug_sleepers()["data_bells"] == 0
    finally:
        p.kill()
        p.join(10)
        for end in (a, c, d):
            end.close()
