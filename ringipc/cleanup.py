"""Find and remove shared-memory segments left by processes that died.

A ring's creator unlinks its segment on close and at normal exit; a process
killed with SIGKILL cannot.  ``python -m ringipc cleanup`` lists every
``ringipc-`` segment in /dev/shm with its creator and removes those whose
creator is gone (``--dry-run`` only lists them).  A segment whose creator
cannot be told (a user-named segment of no kind this version knows) is listed
and kept.  A large message's side segment is removed once its sender is
dead and its ring is gone (named or anonymous: anonymous rings are found in
their holders' /proc/PID/fd).  It does the same for the channels' queues a
killed listener left: the System V message queues of ``sysvmq://`` (found by
their owner marker, removed when it names a dead process) and the POSIX
message queue pairs of ``mq://`` in /dev/mqueue (removed when no live listener
holds them; listed only where the mqueue file system is mounted).
"""
import argparse
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from .core import _attach_locks, _segment
from .core._segment_handle import anonymous_segments
from .core._ring import pid_alive, segment_creator_pid
from .errors import CorruptSegment
from .topic._topic import segment_creator_pid as topic_creator_pid

_PID_IN_NAME = re.compile(r"^ringipc-(\d+)-[0-9a-f]+$")
# A large message's side segment (core/large.py): <ring>-L<sender pid>-<hex>,
# or the bell of a sender's slab pool (core/slabs.py): <ring>-L<sender pid>-bell<hex>.
_SIDE_SEGMENT = re.compile(r"^(ringipc-.+)-L(\d+)-(?:bell)?[0-9a-f]+$")


def _creator_of(name: str) -> Tuple[Optional[int], str]:
    """(pid, how we know it): from the header when it validates (a ring's, a
    synchronisation primitive's or a topic's), else from the name."""
    from .sync._sync import segment_creator_pid as primitive_creator_pid
    for creator_pid in (segment_creator_pid, primitive_creator_pid, topic_creator_pid):
        try:
            return creator_pid(name), "header"
        except (CorruptSegment, OSError, ValueError):
            pass
    match = _PID_IN_NAME.match(name)
    return (int(match.group(1)), "name") if match else (None, "unknown")


def side_segment_of(name: str) -> Optional[Tuple[str, int]]:
    """(ring name, sender pid) of a large message's side segment, else None."""
    match = _SIDE_SEGMENT.match(name)
    return None if match is None else (match.group(1), int(match.group(2)))


def live_ring_names() -> Set[str]:
    """Names of the segments that exist, named or anonymous (held open)."""
    return set(_segment.names()) | set(anonymous_segments())


def side_segment_orphaned(name: str, live_rings: Set[str]) -> Optional[bool]:
    """A side segment is orphaned once its sender is dead and its ring is
    gone: while the ring lives, its reference may still be received."""
    side = side_segment_of(name)
    if side is None:
        return None
    ring, sender = side
    return not pid_alive(sender) and ring not in live_rings


def list_segments() -> List[Dict[str, Any]]:
    """Every ringipc segment as dicts: name, size, creator pid, whether it is orphaned."""
    found: List[Dict[str, Any]] = []
    names = _segment.names()
    live_rings = live_ring_names()
    for name in names:
        try:
            size = os.stat(os.path.join(_segment.SHM_DIR, name)).st_size
        except FileNotFoundError:
            continue  # removed meanwhile
        side = side_segment_of(name)
        if side is not None:
            found.append({"name": name, "size": size, "creator_pid": side[1], "creator_from": "side segment",
                          "attached": False, "orphaned": side_segment_orphaned(name, live_rings)})
            continue
        pid, source = _creator_of(name)
        attached = _attached(name)
        found.append({
            "name": name,
            "size": size,
            "creator_pid": pid,
            "creator_from": source,
            "attached": attached,
            # A segment nobody can be named for (a user-named one of no kind this
            # version knows) is kept: removing memory that may be in use is worse
            # than leaving it listed.  One still attached is left to its last
            # holder, who removes it on letting go (core/_attach_locks.py).
            "orphaned": pid is not None and not pid_alive(pid) and not attached,
        })
    return found


def _attached(name: str) -> bool:
    """Whether a live process still holds the segment (its attach lock)."""
    try:
        fd = os.open(os.path.join(_segment.SHM_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return _attach_locks.attached_elsewhere(fd)
    except OSError:
        return False
    finally:
        os.close(fd)


def remove_orphans(dry_run: bool = False) -> List[str]:
    """Unlink every segment whose creator is dead; returns the names."""
    removed = []
    for seg in list_segments():
        if seg["orphaned"]:
            if not dry_run:
                _segment.unlink(seg["name"])
            removed.append(seg["name"])
    return removed


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ringipc cleanup", description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    parser.add_argument("--mqueue-dir", default="/dev/mqueue", metavar="DIR",
                        help="where the mqueue file system is mounted (default /dev/mqueue)")
    args = parser.parse_args(argv)
    segments = list_segments()
    for seg in segments:
        state = "orphaned" if seg["orphaned"] else "in use" if seg["creator_pid"] is not None or seg["attached"] else (
            f"creator unknown, kept (remove it by hand if unused: rm {os.path.join(_segment.SHM_DIR, seg['name'])})")
        print(f"{seg['name']}  {seg['size']:>12} B  creator {seg['creator_pid']} ({seg['creator_from']})  {state}")
    removed = remove_orphans(dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {len(removed)} orphaned segment(s) of {len(segments)}")
    _cleanup_sysv_queues(args.dry_run, verb)
    _cleanup_posix_queues(args.dry_run, verb, args.mqueue_dir)
    return 0


def _cleanup_sysv_queues(dry_run: bool, verb: str) -> None:
    """System V message queues of sysvmq:// whose creator is dead (channels/transports/sysvmq_queue.py)."""
    from .channels.transports import sysvmq_queue
    queues = sysvmq_queue.list_queues()
    for q in queues:
        state = "orphaned" if q["orphaned"] else "in use"
        print(f"sysvmq key {q['key']:#x} (msqid {q['id']})  creator {q['creator_pid']}  {state}")
    removed = sysvmq_queue.remove_orphans(dry_run=dry_run)
    print(f"{verb} {len(removed)} orphaned System V message queue(s) of {len(queues)}")


def _cleanup_posix_queues(dry_run: bool, verb: str, directory: str) -> None:
    """POSIX message queue pairs of mq:// no live listener holds (channels/transports/mq_leftovers.py)."""
    from .channels.transports import mq_leftovers
    if not os.path.isdir(directory):
        print(f"POSIX message queues not listed: the mqueue file system is not mounted at {directory} "
              f"(mount -t mqueue none {directory})")
        return
    try:
        import posix_ipc  # noqa: F401  (mq:// and its reaping need it)
    except ImportError:
        return
    queues = mq_leftovers.list_queues(directory)
    for q in queues:
        print(f"{q['address']}  ({' + '.join(q['names'])})  {'orphaned' if q['orphaned'] else 'in use'}")
    removed = mq_leftovers.remove_orphans(dry_run=dry_run, directory=directory)
    print(f"{verb} {len(removed)} orphaned POSIX message queue pair(s) of {len(queues)}")
