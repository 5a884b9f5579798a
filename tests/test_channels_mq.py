"""mq:// specifics: leftovers of one connection never reach the next, and a
wait with no timeout stays interruptible by signals and by close()."""
import os
import signal
import threading

import pytest

from _channel_support import HANG_GUARD_SECONDS, address_for, channel_pair, peer_process
from _channel_support import no_leftovers  # noqa: F401  (fixture)
from _proc_support import until_asleep_in
from ringipc.channels.address import connect, listen
from ringipc.errors import ChannelClosed, FrameError, MessageTooLarge

pytestmark = pytest.mark.usefixtures("no_leftovers")


def test_leftovers_of_an_earlier_connection_do_not_reach_the_next(tmp_path):
    with listen(address_for("mq", tmp_path)) as lst:
        # Connect before accepting: the hello waits in the queue.
        old_client = connect(lst.address, timeout=10)
        old_server = lst.accept(timeout=10)
        old_client.send_bytes(b"old, for the server")
        old_server.send_bytes(b"old, for the client")
        # Neither end reads: each queue keeps a message and an EOF.
        old_client.close()
        old_server.close()
        with connect(lst.address, timeout=10) as client:
            # Read before the listener has accepted (and emptied .down).
            with pytest.raises(TimeoutError):
                client.recv_bytes(timeout=0)
            with lst.accept(timeout=10) as server:
                client.send_bytes(b"new, for the server")
                server.send_bytes(b"new, for the client")
                assert server.recv_bytes(timeout=10) == b"new, for the server"
                assert client.recv_bytes(timeout=10) == b"new, for the client"
                assert not server.poll(0) and not client.poll(0)


class Woken(Exception):
    pass


def _receive_through_a_signal(ch):
    def handler(signum, frame):
        raise Woken

    signal.signal(signal.SIGUSR1, handler)
    ch.send("waiting")
    try:
        ch.recv_bytes()  # no timeout: only the handler can end this
    except Woken:
        ch.send("handler ran")
    ch.send([ch.recv() for _ in range(50)])


def test_signal_handler_runs_in_a_wait_without_timeout_and_nothing_is_lost(tmp_path):
    with peer_process("mq", tmp_path, _receive_through_a_signal) as (ch, proc):
        assert ch.recv(timeout=60) == "waiting"
        until_asleep_in(f"/proc/{proc.pid}", "poll")
        os.kill(proc.pid, signal.SIGUSR1)
        assert ch.recv(timeout=60) == "handler ran"
        for i in range(50):  # more than the queue holds: the child must keep receiving
            ch.send(i)
        assert ch.recv(timeout=60) == list(range(50))
    assert proc.exitcode == 0


@pytest.mark.parametrize("blocked_in", ["recv", "send"])
def test_close_from_another_thread_ends_a_wait_without_timeout(blocked_in, tmp_path):
    """The blocked call raises ChannelClosed, as any call on a closed channel does."""
    with channel_pair("mq", tmp_path) as (a, b):
        # The connector's end: the listener's accept would take a slot in the queue it sends on.
        if blocked_in == "send":
            for _ in range(10):  # the queue's depth: the next send must wait
                b.send_bytes(b"fill")
            call = lambda: b.send_bytes(b"one too many")  # noqa: E731
        else:
            call = b.recv_bytes
        tid, outcome = [], []

        def run():
            tid.append(threading.get_native_id())
            try:
                outcome.append(call())
            except BaseException as exc:
                outcome.append(exc)

        t = threading.Thread(target=run)
        t.start()
        while not tid:
            os.sched_yield()
        until_asleep_in(f"/proc/self/task/{tid[0]}", "poll")
        b.close()
        t.join(HANG_GUARD_SECONDS)
        assert not t.is_alive(), f"close() did not end a blocked {blocked_in}"
        assert len(outcome) == 1 and isinstance(outcome[0], ChannelClosed), outcome
        if blocked_in == "send":
            assert [a.recv_bytes(timeout=10) for _ in range(10)] == [b"fill"] * 10


# recv_bytes() with no timeout runs in C (_mq_fast.pyx); with one, in Python.
@pytest.mark.parametrize("timeout", [None, 10], ids=["fast-path", "general-path"])
def test_limits_and_eof_on_both_receive_paths(tmp_path, timeout):
    with channel_pair("mq", tmp_path, max_message_size=100) as (a, b):
        b.send_bytes(b"x" * 99)  # the largest data message: one byte under the queue's size
        b.send_bytes(b"")
        assert a.recv_bytes(timeout=timeout) == b"x" * 99
        assert a.recv_bytes(timeout=timeout) == b""
        a.max_message_size = 10
        b.send_bytes(b"y" * 11)
        b.send_bytes(b"z" * 10)
        with pytest.raises(FrameError, match="over the 10-byte limit"):
            a.recv_bytes(timeout=timeout)
        assert a.recv_bytes(timeout=timeout) == b"z" * 10
        with pytest.raises(MessageTooLarge):
            b.send_bytes(b"w" * 100)  # the queue's own size is for control messages
        b.close()  # queues an EOF: a control message, taken by whichever path receives
        with pytest.raises(EOFError):
            a.recv_bytes(timeout=timeout)
        assert a.poll(0)  # EOF stays ready
