"""Count the system calls of 1 MiB NumPy arrays through ringipc.Queue, per
process, for the claim "no shm_open/ftruncate/unlink/mmap per object":

    python benchmarks/syscalls_large.py [COUNT]      (default 1000; needs strace)

Runs itself twice under ``strace -f``: a consumer (this process) that
creates the queue and a forked producer that puts 3 + COUNT arrays, then
3 + 0.  Each call is charged to the consumer or the producer (their threads
included) and the table shows, per process, the calls of the COUNT run and
what the COUNT objects added over the run without them.
"""
import collections
import os
import re
import subprocess
import sys
import tempfile

CALLS = ("openat", "ftruncate", "fallocate", "mmap", "munmap", "unlink", "memfd_create", "futex", "clock_nanosleep", "getpid")


def _run(count):
    import multiprocessing

    import numpy as np

    import ringipc

    def produce(q):
        arr = np.ones(1 << 17)  # 1 MiB
        for _ in range(3 + count):
            q.put(arr)
        q.close()
        q.join_thread()

    q = ringipc.Queue()
    proc = multiprocessing.get_context("fork").Process(target=produce, args=(q,))
    proc.start()
    print(os.getpid(), proc.pid, flush=True)
    for _ in range(3 + count):
        q.get()
    proc.join()
    q.close()


def _traced(count, tmp):
    out = os.path.join(tmp, f"trace{count}")
    pids = subprocess.run(["strace", "-f", "-qq", "-o", out, sys.executable, __file__, "--run", str(count)],
                          check=True, capture_output=True, text=True, timeout=600).stdout.split()
    roots = [int(p) for p in pids]
    owner = {p: p for p in roots}
    counts = {p: collections.Counter() for p in roots}
    with open(out) as f:
        for line in f:
            m = re.match(r"(\d+)\s+(?:<\.\.\. )?(\w+)", line)
            if m is None:
                continue
            tid, call = int(m.group(1)), m.group(2)
            child = re.search(r"= (\d+)$", line.strip())
            if call.startswith(("clone", "fork", "vfork")) and child and tid in owner:
                owner.setdefault(int(child.group(1)), owner[tid])  # a thread or child of one of ours
            if tid in owner and "resumed>" not in line:
                counts[owner[tid]][call] += 1
    return counts[roots[0]], counts[roots[1]]


def main():
    if sys.argv[1:2] == ["--run"]:
        return _run(int(sys.argv[2]))
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        base, many = _traced(0, tmp), _traced(count, tmp)
    print(f"{'call':<14}{'consumer':>10}{'(+objects)':>12}{'producer':>10}{'(+objects)':>12}")
    for call in CALLS:
        row = [many[i][call] for i in (0, 1)]
        extra = [many[i][call] - base[i][call] for i in (0, 1)]
        print(f"{call:<14}{row[0]:>10}{extra[0]:>+12}{row[1]:>10}{extra[1]:>+12}")
    print(f"{'all calls':<14}{sum(many[0].values()):>10}{sum(many[0].values()) - sum(base[0].values()):>+12}"
          f"{sum(many[1].values()):>10}{sum(many[1].values()) - sum(base[1].values()):>+12}")


if __name__ == "__main__":
    main()
