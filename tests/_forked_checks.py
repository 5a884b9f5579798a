"""Running many numbered checks in forked worker processes, with a deadline
on each, so that a check that hangs (a C loop spinning with the GIL held
cannot be interrupted from inside), crashes (SIGSEGV, SIGBUS, an ASan abort)
or raises is reported with the number that replays it, and never hangs or
kills the test run itself.

A fork per check would cost more than the checks: each worker runs a
contiguous range of numbers and tells the parent over a pipe when it starts
the next one.  The parent kills a worker whose current check has run longer
than the deadline; after any failure a new worker takes over the rest of the
range, so one run can report several failing numbers.
"""
import mmap
import multiprocessing
import os
import signal
import struct
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import wait

from _proc_support import kill_now

ctx = multiprocessing.get_context("fork")
SHM_DIR = "/dev/shm"


class Note:
    """What a worker is doing, in memory shared with the parent, so that it
    can still be read after the worker was killed or crashed: a description
    of the current check's state, and the step it is in."""

    HALF = 1 << 15

    def __init__(self):
        self.map = mmap.mmap(-1, 2 * self.HALF)  # MAP_SHARED: survives into fork children

    def _put(self, base, text):
        data = text.encode(errors="replace")[: self.HALF - 4]
        self.map[base + 4: base + 4 + len(data)] = data
        struct.pack_into("<I", self.map, base, len(data))

    def _get(self, base):
        (n,) = struct.unpack_from("<I", self.map, base)
        return self.map[base + 4: base + 4 + min(n, self.HALF - 4)].decode(errors="replace")

    def state(self, text):
        self._put(0, text)
        self._put(self.HALF, "")

    def step(self, text):
        self._put(self.HALF, text)

    def read(self):
        return self._get(0), self._get(self.HALF)

    def close(self):
        self.map.close()


@dataclass
class Failure:
    number: int
    what: str    # "hang", "crash" or "exception"
    detail: str  # how long it hung, the signal, or the traceback
    state: str   # the check's own description of what it was given
    step: str    # what it was doing

    def __str__(self):
        return (f"check {self.number}: {self.what} in step {self.step!r}: {self.detail}\n"
                f"  state:\n    " + self.state.replace("\n", "\n    "))


def _worker(check, numbers, conn, note):
    for n in numbers:
        note.state("")
        conn.send(("start", n))
        try:
            check(n, note)
        except BaseException:
            conn.send(("raised", n, traceback.format_exc()))
            return
    conn.send(("done",))


class _Worker:
    def __init__(self, check, numbers):
        self.numbers = numbers
        self.note = Note()
        self.conn, child_end = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_worker, args=(check, numbers, child_end, self.note), daemon=True)
        self.proc.start()
        child_end.close()
        self.index = -1  # into numbers: the check running now
        self.since = time.monotonic()

    def current(self):
        return self.numbers[self.index] if self.index >= 0 else self.numbers[0]

    def failure(self, what, detail):
        state, step = self.note.read()
        return Failure(self.current(), what, detail, state, step)

    def end(self):
        """Reap the worker (killing it if it still runs) and remove the
        segments a killed worker could not: their names carry its pid."""
        if self.proc.exitcode is None:
            kill_now(self.proc)
        prefix = f"ringipc-{self.proc.pid}-"
        for name in os.listdir(SHM_DIR):
            if name.startswith(prefix):
                os.unlink(os.path.join(SHM_DIR, name))
        self.conn.close()
        self.note.close()


def run(check, numbers, workers=2, hang_after=10.0, max_failures=5):
    """Runs check(number, note) for every number, in `workers` forked
    processes.  Returns (failures, how many checks finished)."""
    numbers = list(numbers)
    per = -(-len(numbers) // workers) if numbers else 1
    live = [_Worker(check, numbers[i:i + per]) for i in range(0, len(numbers), per)]
    failures, finished = [], 0
    try:
        while live:
            oldest = min(w.since for w in live)
            for conn in wait([w.conn for w in live], max(0.0, oldest + hang_after - time.monotonic())):
                w = next(w for w in live if w.conn is conn)
                failure = None
                try:
                    while failure is None and w.conn.poll(0):  # drain: one wake-up per batch
                        msg = w.conn.recv()
                        if msg[0] == "start":
                            finished += w.index >= 0
                            w.index += 1
                            w.since = time.monotonic()
                        elif msg[0] == "raised":
                            failure = w.failure("exception", msg[2])
                        else:  # done
                            finished += 1
                            w.proc.join()
                            if w.proc.exitcode != 0:
                                failure = w.failure("crash", f"worker exited with {w.proc.exitcode} after its last check")
                            else:
                                live.remove(w)
                                w.end()
                            break
                except EOFError:  # the pipe closed without "done": the worker died
                    w.proc.join()
                    code = w.proc.exitcode
                    sig = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
                    failure = w.failure("crash", f"worker died of {sig}")
                if failure is not None:
                    failures.append(failure)
                    _replace(live, w, check, len(failures) < max_failures)
            now = time.monotonic()
            for w in [w for w in live if now - w.since > hang_after]:
                failures.append(w.failure("hang", f"still running after {now - w.since:.1f} s; killed"))
                _replace(live, w, check, len(failures) < max_failures)
            if len(failures) >= max_failures:
                break
    finally:
        for w in live:
            w.end()
    return failures, finished


def _replace(live, w, check, go_on):
    """Ends worker w and, if go_on, starts another on the numbers after the failed one."""
    live.remove(w)
    rest = w.numbers[max(w.index, 0) + 1:]
    w.end()
    if go_on and rest:
        live.append(_Worker(check, rest))
