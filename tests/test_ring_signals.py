"""Blocking calls keep their timeouts through signals and raise KeyboardInterrupt promptly."""
import os
import queue
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from _proc_support import until_asleep_in
from ringipc import Ring


@pytest.fixture(params=["spsc", "mpmc"])
def ring(request):
    with Ring(capacity=4096, kind=request.param) as r:
        yield r


def test_timer_signals_during_a_timed_wait(ring):
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
    try:
        start = time.monotonic()
        with pytest.raises(queue.Empty):
            ring.recv_bytes(timeout=0.3)
        elapsed = time.monotonic() - start
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    assert len(fired) >= 3, "the handler must run while we wait"
    assert elapsed >= 0.3, "a signal must not cut the timeout short"


def test_handler_exception_propagates_out_of_a_blocking_wait(ring):
    class Stop(Exception):
        pass

    def handler(*_):
        raise Stop

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        with pytest.raises(Stop):
            ring.recv_bytes()  # no timeout: only the handler can end this
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


CHILD = textwrap.dedent("""
    import sys, time, ringipc
    ring = ringipc.Ring(capacity=4096, kind=sys.argv[1])
    try:
        if sys.argv[2] == "write":
            while True:
                ring.send_bytes(b"x" * 100, block=False)
        print("blocking", flush=True)
    except Exception:
        print("blocking", flush=True)
    try:
        if sys.argv[2] == "write":
            ring.send_bytes(b"x" * 100)
        else:
            ring.recv_bytes()
    except KeyboardInterrupt:
        print("interrupted", time.monotonic(), flush=True)
    finally:
        ring.close()
""")


@pytest.mark.parametrize("kind", ["spsc", "mpmc"])
@pytest.mark.parametrize("side", ["read", "write"])
def test_sigint_raises_keyboard_interrupt_promptly(kind, side):
    child = subprocess.Popen([sys.executable, "-c", CHILD, kind, side], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "blocking"
        until_asleep_in(f"/proc/{child.pid}", "futex")
        sent = time.monotonic()
        os.kill(child.pid, signal.SIGINT)
        line = child.stdout.readline().split()
        assert line and line[0] == "interrupted"
        assert float(line[1]) - sent < 3.0  # sliced waits: prompt even on a loaded machine
        assert child.wait(timeout=10) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
