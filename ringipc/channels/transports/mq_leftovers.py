"""POSIX message queues of ``mq://`` listeners that died: told apart from live
ones, and removed.

A live listener holds an exclusive ``flock`` on its ``/NAME.up`` queue
descriptor (on Linux a queue descriptor is a file descriptor, and the lock
belongs to the open queue description, so the kernel drops it when the
listener's process dies however it dies, and a forked child that still has
the descriptor keeps it).  A ``/NAME.up`` + ``/NAME.down`` pair whose
``.up`` nobody holds was left by a listener killed before it could unlink
it (SIGKILL, or SIGTERM without a handler).  The next listener on the same
name removes such a pair and makes its own; ``python -m ringipc cleanup``
lists the pairs in ``/dev/mqueue`` (where the mqueue file system is
mounted: nothing else can list POSIX queues) and removes the abandoned
ones.  A queue not in such a pair is never touched.

Between creating ``.up`` and locking it a listener is unprotected for a
moment (two system calls); a second listener starting on the same name at
that very instant could take it for abandoned."""
from __future__ import annotations

import fcntl
import os
from typing import Any, Dict, List

MQUEUE_DIR = "/dev/mqueue"


def hold(queue: Any) -> None:
    """The listener's claim on its ``.up`` queue, for as long as its process has it open."""
    fcntl.flock(queue.mqd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def reap(up: str, down: str) -> bool:
    """Unlink the pair ``up``/``down`` if no live listener holds ``up``;
    whether the names are free now."""
    import posix_ipc

    try:
        queue = posix_ipc.MessageQueue(up, read=True, write=False)
    except posix_ipc.ExistentialError:
        return True
    except posix_ipc.Error:
        return False  # not ours to open
    try:
        try:
            fcntl.flock(queue.mqd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held: its listener lives
        # The lock is ours until close: no other reaper decides on this queue meanwhile.
        for name in (up, down):
            try:
                posix_ipc.unlink_message_queue(name)
            except posix_ipc.ExistentialError:
                pass
        return True
    finally:
        queue.close()


def _held(name: str) -> bool:
    import posix_ipc

    try:
        queue = posix_ipc.MessageQueue(name, read=True, write=False)
    except posix_ipc.Error:
        return True  # gone, or not ours to open: leave it
    try:
        fcntl.flock(queue.mqd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        queue.close()
    return False


def list_queues(directory: str = MQUEUE_DIR) -> List[Dict[str, Any]]:
    """The ``mq://`` queue pairs in ``directory`` (the mqueue file system) that
    this user owns: dicts with address, names, orphaned.  Empty where it is not mounted."""
    try:
        entries = set(os.listdir(directory))
    except OSError:
        return []
    found = []
    for entry in sorted(entries):
        if not entry.endswith(".up") or entry[:-3] + ".down" not in entries:
            continue
        base = entry[:-3]
        try:
            owners = {os.lstat(os.path.join(directory, e)).st_uid for e in (entry, base + ".down")}
        except OSError:
            continue
        if owners != {os.getuid()}:
            continue
        up, down = f"/{base}.up", f"/{base}.down"
        found.append({"address": f"mq:///{base}", "names": (up, down), "orphaned": not _held(up)})
    return found


def remove_orphans(dry_run: bool = False, directory: str = MQUEUE_DIR) -> List[str]:
    """Remove the abandoned pairs :func:`list_queues` finds; return their addresses."""
    removed = []
    for q in list_queues(directory):
        if q["orphaned"] and (dry_run or reap(*q["names"])):
            removed.append(q["address"])
    return removed
