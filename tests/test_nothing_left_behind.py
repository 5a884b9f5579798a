"""However a program ends, it leaves nothing in /dev/shm (issue: SIGTERM and
SIGKILL skip every exit handler, so only objects without names are safe).

Each case runs tests/_leftover_program.py -- every kind of ringipc object,
made without a name and handed to two children -- in its own session, ends it
one way, waits until every process of it has gone, and compares /dev/shm and
/dev/mqueue with what they held before.  Named objects are covered below: the
last process to let go of a segment whose creator was killed removes its name.
"""
import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest

import ringipc
from ringipc import sync

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAM = os.path.join(HERE, "_leftover_program.py")
METHODS = ["fork", "spawn", "forkserver"]
ENDINGS = ["normal", "sigterm", "sigkill-parent-first", "sigkill-children-first", "sigkill-all"]
DEADLINE = 120.0


def ipc_names():
    """Every ringipc name in /dev/shm (segments, semaphores) and /dev/mqueue."""
    found = set()
    for folder in ("/dev/shm", "/dev/mqueue"):
        try:
            found |= {f"{folder}/{n}" for n in os.listdir(folder) if n.startswith(("ringipc", "sem.ringipc"))}
        except FileNotFoundError:
            pass
    return found


def made_by(names, pids):
    """The names made by one of `pids` (ringipc puts the creator's pid in the
    names it makes up); names without a pid are counted as theirs too.  Other
    programs on the machine may be making segments meanwhile."""
    def creator(name):
        match = re.search(r"ringipc-(\d+)-", name)
        return int(match.group(1)) if match else None
    return {n for n in names if creator(n) is None or creator(n) in pids}


def group_members(pgid):
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            members.append(int(entry))
    return members


def until_gone(pids, limit=DEADLINE):
    """Block until every pid has exited (pidfds become readable at exit, when
    the kernel has already closed its descriptors and unmapped its memory)."""
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            ready, _, _ = select.select([fd], [], [], limit)
            assert ready, f"process {pid} did not exit"
        finally:
            os.close(fd)


def kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("method", METHODS)
def test_unnamed_objects_leave_nothing_however_the_program_ends(method, ending):
    before = ipc_names()
    proc = subprocess.Popen([sys.executable, PROGRAM, method, ending], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True, text=True)
    pgid = proc.pid
    ours = {pgid}
    try:
        ready, _, _ = select.select([proc.stdout], [], [], DEADLINE)
        line = proc.stdout.readline().split() if ready else []
        assert line and line[0] == "READY", f"the program failed before READY: {line}"
        parent, children = int(line[1]), [int(p) for p in line[2:]]
        ours = set(group_members(pgid)) | {parent, *children}
        # While it runs, its objects have no names at all.
        assert made_by(ipc_names() - before, ours) == set()
        if ending == "sigterm":
            os.killpg(pgid, signal.SIGTERM)
        elif ending == "sigkill-parent-first":
            kill(parent, signal.SIGKILL)
            until_gone([parent])
        elif ending == "sigkill-children-first":
            for pid in children:
                kill(pid, signal.SIGKILL)
            until_gone(children)
            kill(parent, signal.SIGKILL)
        elif ending == "sigkill-all":
            os.killpg(pgid, signal.SIGKILL)
        if ending == "normal":
            assert proc.wait(DEADLINE) == 0
        else:
            proc.wait(DEADLINE)
            if group_members(pgid):  # orphans: the forkserver, children whose parent went first
                os.killpg(pgid, signal.SIGKILL)
        until_gone(group_members(pgid))
    finally:
        if proc.poll() is None or group_members(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        proc.stdout.close()
    assert made_by(ipc_names() - before, ours) == set()


ATTACHER = """
import sys, ringipc
from ringipc import sync
ring = ringipc.Ring.attach(sys.argv[1])
lock = sync.Lock.attach(sys.argv[1] + "-lock")
topic = ringipc.Topic.attach(sys.argv[1] + "-topic")
print("ATTACHED", flush=True)
sys.stdin.read()   # until the test closes our stdin
"""

CREATOR = """
import sys, signal, ringipc
from ringipc import sync
objs = [ringipc.Ring(1 << 16, name=sys.argv[1]), sync.Lock(name=sys.argv[1] + "-lock"),
        ringipc.Topic(name=sys.argv[1] + "-topic", capacity=1 << 16)]
print("CREATED", flush=True)
signal.pause()
"""


def _start(code, name):
    proc = subprocess.Popen([sys.executable, "-c", code, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().split() in (["CREATED"], ["ATTACHED"])
    return proc


def _names(base):
    return {f"ringipc-{base}", f"ringipc-{base}-lock", f"ringipc-{base}-topic"} & set(os.listdir("/dev/shm"))


def _let_go(proc, how):
    if how == "exit":
        proc.stdin.close()
        assert proc.wait(DEADLINE) == 0
    else:
        proc.kill()
        proc.wait(DEADLINE)
        proc.stdin.close()
    proc.stdout.close()


def test_named_segments_go_with_the_last_holder_after_the_creator_is_killed():
    base = f"reap-{os.getpid()}-{time.monotonic_ns()}"
    creator = _start(CREATOR, base)
    first, second = _start(ATTACHER, base), _start(ATTACHER, base)
    _let_go(creator, "kill")
    assert len(_names(base)) == 3, "killing the creator must not remove names others still use"
    _let_go(first, "exit")
    assert len(_names(base)) == 3, "the second attacher still holds them"
    _let_go(second, "exit")
    assert _names(base) == set()


def test_names_left_by_a_killed_last_holder_go_with_the_next_one():
    base = f"reap-{os.getpid()}-{time.monotonic_ns()}"
    creator = _start(CREATOR, base)
    attacher = _start(ATTACHER, base)
    _let_go(creator, "kill")
    _let_go(attacher, "kill")
    assert len(_names(base)) == 3, "nobody was left to remove them"
    # The next process to attach and let go finds the creator gone and nobody else.
    ring = ringipc.Ring.attach(base)
    lock = sync.Lock.attach(base + "-lock")
    topic = ringipc.Topic.attach(base + "-topic")
    for obj in (ring, lock, topic):
        obj.close()
    assert _names(base) == set()


def test_a_live_creator_keeps_its_names_when_others_let_go():
    base = f"keep-{os.getpid()}-{time.monotonic_ns()}"
    with ringipc.Ring(1 << 16, name=base) as ring:
        for _ in range(3):
            ringipc.Ring.attach(base).close()
        assert ring.name in os.listdir("/dev/shm")
    assert f"ringipc-{base}" not in os.listdir("/dev/shm")


def test_plain_pickle_of_an_anonymous_object_says_to_name_it():
    import pickle
    for obj in (ringipc.Ring(1 << 12), sync.Lock(), ringipc.Queue(), ringipc.Topic(capacity=1 << 12)):
        with pytest.raises(TypeError, match="name="):
            pickle.dumps(obj)


def test_named_queue_pickles_to_an_unrelated_process():
    import pickle
    q = ringipc.Queue(maxsize=5, name=f"pickled-{os.getpid()}-{time.monotonic_ns()}")
    q.put("from the creator")
    code = ("import pickle, sys; q = pickle.loads(bytes.fromhex(sys.argv[1])); "
            "assert q.get(timeout=60) == 'from the creator'; q.put('from a stranger'); q.close(); q.join_thread()")
    subprocess.run([sys.executable, "-c", code, pickle.dumps(q).hex()], check=True, timeout=DEADLINE)
    assert q.get(timeout=60) == "from a stranger"
    assert q.qsize() == 0
    q.close()
    q.join_thread()


def _close_inherited(ring):
    ring.close()


def test_a_forked_child_letting_go_never_removes_its_live_parents_name():
    """A forked child shares its parent's open files (and so its locks): it
    must be counted as a holder of its own, or it would see the creator's
    lock as its own and remove the name under its parent."""
    import multiprocessing
    base = f"forked-{os.getpid()}-{time.monotonic_ns()}"
    with ringipc.Ring(1 << 16, name=base) as ring:
        child = multiprocessing.get_context("fork").Process(target=_close_inherited, args=(ring,))
        child.start()
        child.join(DEADLINE)
        assert child.exitcode == 0
        assert ring.name in os.listdir("/dev/shm")
