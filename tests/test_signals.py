"""ringipc.signals: integers carried by realtime signals, in order, with the
sender's pid; timeouts; asyncio; the documented limits.  Each receiver runs
in a freshly forked child, where the forking thread is the only thread and
so the only one a signal can go to."""
import asyncio
import multiprocessing
import os
import signal

import pytest

from ringipc import signals

ctx = multiprocessing.get_context("fork")


def _in_child(body):
    """Run body(report) in a forked child; return what it reported."""
    parent_end, child_end = ctx.Pipe(False)

    def main():
        try:
            child_end.send(("ok", body()))
        except BaseException as exc:  # reported, then asserted in the parent
            child_end.send(("error", repr(exc)))

    proc = ctx.Process(target=main)
    proc.start()
    assert parent_end.poll(60), "the child hung"
    status, result = parent_end.recv()
    proc.join(10)
    assert status == "ok", result
    return result


def _sender(target, values, signum):
    for value in values:
        signals.send(target, value, signum)


def test_values_arrive_in_order_with_the_senders_pid():
    values = [0, 1, -1, 2**63 - 1, -(2**63)] + list(range(100, 160))

    def body():
        with signals.SignalReceiver() as rx:
            sender = ctx.Process(target=_sender, args=(os.getpid(), values, signals.DEFAULT_SIGNAL))
            sender.start()
            got = [rx.recv(timeout=30) for _ in values]
            sender.join()
            return [(m.signum, m.sender_pid == sender.pid, m.value) for m in got]

    assert _in_child(body) == [(signals.DEFAULT_SIGNAL, True, v) for v in values]


def test_timeout_and_non_blocking():
    def body():
        with signals.SignalReceiver([signal.SIGRTMIN + 1]) as rx:
            for call in (lambda: rx.recv(timeout=0.05), lambda: rx.recv(block=False)):
                try:
                    call()
                    return "received nothing yet a message came"
                except TimeoutError:
                    pass
            signals.send(os.getpid(), 7, signal.SIGRTMIN + 1)
            return rx.recv(block=False).value

    assert _in_child(body) == 7


def test_asyncio():
    def body():
        with signals.SignalReceiver() as rx:
            async def main():
                sender = ctx.Process(target=_sender, args=(os.getpid(), [5, 6], signals.DEFAULT_SIGNAL))
                sender.start()
                got = [(await asyncio.wait_for(rx.recv_async(), 30)).value for _ in range(2)]
                sender.join()
                return got
            return asyncio.run(main())

    assert _in_child(body) == [5, 6]


def test_standard_signals_coalesce():
    """The documented limit: a standard signal sent three times while pending arrives once."""
    def body():
        with signals.SignalReceiver([signal.SIGUSR1]) as rx:
            for value in (1, 2, 3):
                signals.send(os.getpid(), value, signal.SIGUSR1)
            first = rx.recv(timeout=5).value
            try:
                rx.recv(timeout=0.1)
                return "a second one arrived"
            except TimeoutError:
                return first

    assert _in_child(body) == 1


def test_bad_targets_and_values():
    child = ctx.Process(target=os._exit, args=(0,))
    child.start()
    child.join()
    with pytest.raises(ProcessLookupError):
        signals.send(child.pid, 1)
    with pytest.raises(OverflowError):
        signals.send(os.getpid(), 2**63)
    with pytest.raises(ValueError):
        signals.SignalReceiver([0])
