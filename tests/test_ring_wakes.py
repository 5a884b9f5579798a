"""What waking a ring's sleepers costs the side that makes progress: one
wake system call per sleep, however many commits follow before the woken
sleeper has left its wait (csrc/ring_release.c).  Under oversubscription
the woken process may wait milliseconds for a CPU; a wake per commit meanwhile
made the producer run at system-call speed."""
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _shared_futex_wakes(kind, count):
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ringipc-wake-strace-{os.getpid()}")
    try:
        subprocess.run(["strace", "-f", "-qq", "-o", out, "-e", "trace=futex",
                        sys.executable, os.path.join(HERE, "_wake_syscalls.py"), kind, str(count)],
                       check=True, timeout=120, env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)))
        with open(out) as f:
            lines = f.read().splitlines()
    finally:
        if os.path.exists(out):
            os.unlink(out)
    # Shared futex calls are the ring's; private ones are the interpreter's.
    return sum("FUTEX_WAKE" in line and "_PRIVATE" not in line for line in lines)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize("kind", ["spsc", "mpmc"])
def test_one_wake_per_sleep(kind):
    """1000 commits while a (stopped) consumer is counted asleep: exactly one
    wake system call, and that one wake-up is enough for the consumer to
    receive all 1000 once it runs."""
    assert _shared_futex_wakes(kind, 1000) == 1
