"""Nothing of a drop-in is left in /dev/shm: after a normal exit, after a child
was SIGKILLed, after an exception in the parent.

Each scenario runs as a fresh interpreter; every name ringipc gives the objects
of that interpreter (rings, semaphores, side segments of its rings) contains
``ringipc-<its pid>-``, so leaks are found by name, whatever else runs.
"""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRELUDE = """
import os, signal, sys
import multiprocessing as mp
from ringipc.mp.queues import Queue, JoinableQueue, SimpleQueue
from ringipc.mp.connection import Pipe

BIG = b"B" * 100000   # larger than the 16 KiB rings below: side segments

def take_one(q):
    q.get(timeout=60)

def flood(q):
    # Puts until killed: ring full, feeder blocked, side segments made and unread.
    for i in range(10 ** 6):
        q.put((i, BIG))
"""

SCENARIOS = {
    "normal_exit": """
        q, jq, sq = Queue(capacity=1 << 14), JoinableQueue(), SimpleQueue(capacity=1 << 14)
        a, b = Pipe(capacity=1 << 14)
        for obj in (q, jq, sq):
            obj.put(BIG)
        a.send_bytes(BIG)
        p = ctx.Process(target=take_one, args=(q,))
        p.start(); p.join()
        q.put(BIG); q.put(BIG)          # left unread at exit
        jq.put(1)
    """,
    "child_sigkilled": """
        q = Queue(capacity=1 << 14)
        p = ctx.Process(target=flood, args=(q,))
        p.start()
        q.get(timeout=60)               # the child is producing
        q.get(timeout=60)
        os.kill(p.pid, signal.SIGKILL)
        p.join()
    """,
    "exception_in_parent": """
        q = Queue(capacity=1 << 14)
        a, b = Pipe(capacity=1 << 14)
        p = ctx.Process(target=take_one, args=(q,))
        p.start()
        q.put(BIG); q.put(BIG)
        a.send_bytes(BIG)
        p.join()
        raise RuntimeError("the parent fails")
    """,
}


def leftovers(pid):
    marker = f"ringipc-{pid}-"
    return sorted(n for n in os.listdir("/dev/shm") if marker in n)


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_nothing_left_in_dev_shm(tmp_path, scenario, method):
    body = textwrap.indent(textwrap.dedent(SCENARIOS[scenario]), "    ")
    script = tmp_path / f"{scenario}.py"
    script.write_text(PRELUDE + f"\nif __name__ == '__main__':\n    ctx = mp.get_context({method!r})\n" + body)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)
    expected = 1 if scenario == "exception_in_parent" else 0
    assert proc.returncode == expected, err
    if expected:
        assert "the parent fails" in err
    else:
        assert err == ""  # no noise from teardown either
    assert leftovers(proc.pid) == []
