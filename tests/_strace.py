"""Running one of the tests' helper scripts under strace: the system calls a
child makes, for the tests that count what a fast path costs."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def traced(script, args, calls):
    """The strace lines (`calls`: strace's trace= list) of ``python tests/<script> <args>``."""
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ringipc-strace-{os.getpid()}-{script}")
    try:
        subprocess.run(["strace", "-f", "-qq", "-o", out, "-e", f"trace={calls}",
                        sys.executable, os.path.join(HERE, script), *map(str, args)],
                       check=True, timeout=120, env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)))
        with open(out) as f:
            return f.read().splitlines()
    finally:
        if os.path.exists(out):
            os.unlink(out)


def shared_futex(line):
    """A futex call on shared memory (the ring's); private ones are the interpreter's."""
    return "futex(" in line and "_PRIVATE" not in line


def sends_and_shared_futexes(script, *args):
    """(sendto calls, shared futex calls) of ``python tests/<script> <args>``."""
    lines = traced(script, args, "sendto,futex")
    return sum("sendto(" in line for line in lines), sum(map(shared_futex, lines))
