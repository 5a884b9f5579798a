"""Seeing, from the kernel's side, that a process or thread is asleep in a
wait, so that a test acts (a signal, a kill, a close) exactly while it waits:
polling /proc instead of sleeping and hoping."""
import multiprocessing
import os
import signal
import time


def asleep_in(task: str, fragment: str) -> bool:
    """Whether ``task`` (``/proc/PID`` or ``/proc/self/task/TID``) sleeps in a
    kernel function whose name contains ``fragment`` ("futex", "poll", ...)."""
    with open(f"{task}/wchan") as f:
        return fragment in f.read()


def until_asleep_in(task: str, fragment: str, limit: float = 60.0) -> None:
    """Poll (yielding the CPU, never sleeping) until ``asleep_in`` holds;
    an AssertionError after ``limit`` seconds."""
    give_up = time.monotonic() + limit
    while time.monotonic() < give_up:
        if asleep_in(task, fragment):
            return
        os.sched_yield()
    raise AssertionError(f"{task} never went to sleep in {fragment}")


def reap(proc, timeout: float = 30.0) -> None:
    """Join a multiprocessing child, killing it if it has not ended by then,
    so a failing test never leaves it behind."""
    proc.join(timeout)
    if proc.exitcode is None:
        proc.kill()
        proc.join()


def kill_now(proc) -> None:
    """SIGKILL a child (the death the tests inject) and reap it."""
    proc.kill()
    proc.join()


def until_stopped(pid: int, limit: float = 60.0) -> bool:
    """After a SIGSTOP: poll /proc (yielding, never sleeping) until `pid` is
    stopped (True) or has ended (False); an AssertionError after `limit`."""
    give_up = time.monotonic() + limit
    while time.monotonic() < give_up:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state in "tT":
            return True
        if state in "ZX":
            return False
        os.sched_yield()
    raise AssertionError(f"process {pid} never stopped")


def _make_and_hang(make, conn) -> None:
    made = make()  # held: their creator would unlink them when collected
    conn.send([obj.name for obj in made])
    signal.pause()


def left_by_a_killed_creator(make) -> list:
    """The segment names of the objects `make()` creates in a forked child
    that is then SIGKILLed holding them: what a crash leaves in /dev/shm."""
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe()
    creator = ctx.Process(target=_make_and_hang, args=(make, child_end))
    creator.start()
    names = parent_end.recv()
    kill_now(creator)
    return names
