"""The System V message queue behind ``sysvmq://``: its key, the kernel's
limits, its creation, and its lifetime (the owner marker, removal by its
creator, reaping when the creator is dead).

The owner marker.  The creating listener puts one message of type
``OWNER_TYPE`` in the queue naming its pid.  A queue whose marker names a
process that is no longer alive was left by a creator killed before it
could remove it (SIGKILL, or SIGTERM without a handler: no exit code runs).
Such a queue is reaped by the next listener on the same key and by
``python -m ringipc cleanup`` (:func:`list_queues`, :func:`remove_orphans`);
a queue without a ringipc marker is never touched."""
from __future__ import annotations

import atexit
import errno
import os
import struct
import threading
from typing import Any, Dict, List, Optional

from ...errors import AddressError, ResourceLimitError
from .mq_limits import read_sysctl

HELLO_TYPE = 1
OWNER_TYPE = 0x7FFFFFFF
MAGIC = b"RGSYSVQ1"
_OWNER = struct.Struct("<9sI")  # magic + "O", creator pid
_FTOK_ID = ord("R")
_PROC = "/proc/sys/kernel"


def sysv_ipc() -> Any:
    try:
        import sysv_ipc
    except ImportError as exc:
        raise ImportError("sysvmq:// needs the 'sysv_ipc' package (pip install sysv_ipc)") from exc
    return sysv_ipc


def read_limit(name: str) -> Optional[int]:
    """``/proc/sys/kernel/NAME`` (msgmax, msgmnb, msgmni), or None if unreadable."""
    return read_sysctl(f"{_PROC}/{name}")


def parse_key(target: str) -> int:
    """The integer key of a ``sysvmq://`` target."""
    if target.startswith("/"):
        if not os.path.exists(target):
            raise AddressError(f"sysvmq://{target}: the file must exist (its inode makes the key, via ftok)")
        return int(sysv_ipc().ftok(target, _FTOK_ID, silence_warning=True))
    try:
        key = int(target, 0)
    except ValueError:
        raise AddressError(f"sysvmq address must be sysvmq://KEY (an integer) or sysvmq:///PATH, got sysvmq://{target}") from None
    if not 0 < key <= 0x7FFFFFFF:
        raise AddressError(f"a System V key must be 1..0x7fffffff (0 is IPC_PRIVATE), got {key}")
    return key


def peer_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: it will never send again)."""
    if pid <= 0:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    state = stat[stat.rfind(b")") + 2:][:1]
    return state not in (b"Z", b"X")


def check_limits(message_size: int, queue_bytes: Optional[int] = None) -> None:
    """Raise :class:`ResourceLimitError` if messages of ``message_size`` bytes
    cannot travel through a queue here."""
    msgmax = read_limit("msgmax")
    if msgmax is not None and message_size > msgmax:
        raise ResourceLimitError(
            errno.EINVAL,
            f"max_message_size={message_size} exceeds {_PROC}/msgmax={msgmax}; raise it "
            f"(sysctl -w kernel.msgmax={message_size}) or ask for less")
    capacity = queue_bytes or read_limit("msgmnb")
    if capacity is not None and message_size > capacity:
        raise ResourceLimitError(
            errno.EINVAL,
            f"max_message_size={message_size} does not fit the queue's {capacity} bytes "
            f"({_PROC}/msgmnb); raise it (sysctl -w kernel.msgmnb=...) or ask for less")


def creator_of(queue: Any) -> Optional[int]:
    """The pid in ``queue``'s owner marker, or None if it has no ringipc marker.

    The marker is taken off the queue and put back: a reader racing another
    (two cleanups at once) may find none for that instant and skip the queue."""
    pi = sysv_ipc()
    try:
        marker = queue.receive(False, OWNER_TYPE)[0]
    except pi.Error:
        return None
    try:
        magic, pid = _OWNER.unpack(marker) if len(marker) == _OWNER.size else (None, 0)
    finally:
        try:
            queue.send(marker, False, OWNER_TYPE)
        except pi.Error:
            pass
    return pid if magic == MAGIC + b"O" else None


def _reap_stale(key: int) -> bool:
    """Remove the queue at ``key`` if its ringipc creator is dead; whether it was."""
    pi = sysv_ipc()
    try:
        queue = pi.MessageQueue(key, max_message_size=_OWNER.size)
    except pi.ExistentialError:
        return True  # gone meanwhile: the key is free
    except pi.Error:
        return False
    pid = creator_of(queue)
    if pid is None or peer_alive(pid):
        return False
    try:
        queue.remove()
    except pi.Error:
        pass
    return True


def create_queue(key: int, size: int, queue_bytes: Optional[int]) -> Any:
    """A new queue at ``key`` (mode 0600) carrying the owner marker; one a dead
    ringipc creator left at that key is reaped first."""
    pi = sysv_ipc()
    for attempt in (1, 2):
        try:
            queue = pi.MessageQueue(key, pi.IPC_CREX, mode=0o600, max_message_size=size)
            break
        except pi.ExistentialError as exc:
            if attempt == 2 or not _reap_stale(key):
                raise FileExistsError(errno.EEXIST, f"a System V message queue with key {key:#x} already exists") from exc
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise ResourceLimitError(exc.errno, f"the system's queue count is at {_PROC}/msgmni; raise kernel.msgmni") from exc
            raise
    try:
        if queue_bytes is not None:
            try:
                queue.max_size = queue_bytes
            except pi.PermissionsError as exc:
                raise ResourceLimitError(
                    errno.EPERM, f"queue_bytes={queue_bytes} exceeds {_PROC}/msgmnb and this process "
                    "may not raise it (CAP_SYS_RESOURCE); sysctl -w kernel.msgmnb=... instead") from exc
        queue.send(_OWNER.pack(MAGIC + b"O", os.getpid()), False, OWNER_TYPE)
    except BaseException:
        queue.remove()
        raise
    return queue


class Owner:
    """The creator's hold on the queue: removed when the listener and every
    channel it accepted are closed, or at exit (only in the creating process)."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.pid = os.getpid()
        self.refs = 1
        self.lock = threading.Lock()
        atexit.register(self.remove)

    def acquire(self) -> None:
        with self.lock:
            self.refs += 1

    def release(self) -> None:
        with self.lock:
            self.refs -= 1
            last = self.refs == 0
        if last:
            self.remove()

    def remove(self) -> None:
        if os.getpid() != self.pid or self.queue is None:
            return  # a forked child must not take the parent's queue away
        queue, self.queue = self.queue, None
        try:
            queue.remove()
        except Exception:
            pass
        atexit.unregister(self.remove)


# --- python -m ringipc cleanup -------------------------------------------------------------
def list_queues() -> List[Dict[str, Any]]:
    """ringipc's System V queues this user can see: dicts with key, id, creator pid, orphaned."""
    try:
        pi = sysv_ipc()
        with open("/proc/sysvipc/msg") as f:
            lines = f.read().splitlines()[1:]
    except (ImportError, OSError):
        return []
    found = []
    for line in lines:
        fields = line.split()
        try:
            key, msqid = int(fields[0]), int(fields[1])
        except (IndexError, ValueError):
            continue
        if key == 0:
            continue  # IPC_PRIVATE: never ours
        try:
            pid = creator_of(pi.MessageQueue(key, max_message_size=_OWNER.size))
        except pi.Error:
            continue  # not ours to read, or gone
        if pid is not None:
            found.append({"key": key, "id": msqid, "creator_pid": pid, "orphaned": not peer_alive(pid)})
    return found


def remove_orphans(dry_run: bool = False) -> List[int]:
    """Remove ringipc queues whose creator is dead; return their keys."""
    removed = []
    for q in list_queues():
        if q["orphaned"]:
            if not dry_run:
                try:
                    sysv_ipc().remove_message_queue(q["id"])
                except Exception:
                    continue
            removed.append(q["key"])
    return removed
