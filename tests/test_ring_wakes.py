"""What waking a ring's sleepers costs the side that makes progress: one
wake system call per sleep, however many commits follow before the woken
sleeper has left its wait (csrc/ring_release.c).  Under oversubscription
the woken process may wait milliseconds for a CPU; a wake per commit meanwhile
made the producer run at system-call speed."""
import shutil

import pytest

from _strace import shared_futex, traced


def _shared_futex_wakes(kind, count):
    lines = traced("_wake_syscalls.py", (kind, count), "futex")
    return sum("FUTEX_WAKE" in line and shared_futex(line) for line in lines)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize("kind", ["spsc", "mpmc"])
def test_one_wake_per_sleep(kind):
    """1000 commits while a (stopped) consumer is counted asleep: exactly one
    wake system call, and that one wake-up is enough for the consumer to
    receive all 1000 once it runs."""
    assert _shared_futex_wakes(kind, 1000) == 1
