"""Who still holds a named segment, kept by the kernel: open-file-description locks.

A named segment must outlive its creator's crash only as long as someone uses
it, and nothing in the segment itself can count users reliably: a SIGKILLed
process never decrements a counter.  The kernel can.  Every process that maps
a named segment keeps its descriptor open and holds a shared lock
(``F_OFD_SETLK``, ``F_RDLCK``) on byte ATTACHED of it; the creator also holds
an exclusive lock on byte CREATOR.  Open-file-description locks belong to the
open file, not to a process, and vanish when the last descriptor of it is
closed -- by ``close`` or by the kernel when the process dies, however it dies.
So, from any descriptor of the segment:

* "nobody else is attached" = an exclusive lock on ATTACHED can be taken;
* "the creator is gone" = nobody else holds a lock on CREATOR.

Locks of the same open file description never conflict with each other, so
these questions are asked of *other* holders only; forked children therefore
reopen their inherited descriptors (see ``_segment_handle``) to be counted on
their own.  The locks are advisory: they guard nothing but the name.
"""
import fcntl
import os
import struct
from typing import Any

ATTACHED = 0
CREATOR = 1

# struct flock on Linux: short l_type, short l_whence, off_t l_start,
# off_t l_len, pid_t l_pid (l_pid must be 0 for OFD locks).
_FLOCK = struct.Struct("hhqqi4x")
_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
_OFD_SETLKW = getattr(fcntl, "F_OFD_SETLKW", None)
_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", None)
AVAILABLE = _OFD_SETLK is not None


def _lock(fd: int, command: Any, kind: int, byte: int) -> bytes:  # command: None only when not AVAILABLE
    return fcntl.fcntl(fd, command, _FLOCK.pack(kind, os.SEEK_SET, byte, 1, 0))


def hold_attached(fd: int) -> None:
    """Count `fd`'s open file as attached.  Waits (briefly) while a last
    holder is deciding whether to remove the name."""
    if AVAILABLE:
        _lock(fd, _OFD_SETLKW, fcntl.F_RDLCK, ATTACHED)


def mark_creator(fd: int) -> None:
    if AVAILABLE:
        _lock(fd, _OFD_SETLK, fcntl.F_WRLCK, CREATOR)


def take_last(fd: int) -> bool:
    """True if no other open file holds the segment: the ATTACHED byte is now
    held exclusively through `fd` (new attachers wait until `fd` is closed)."""
    if not AVAILABLE:
        return False
    try:
        _lock(fd, _OFD_SETLK, fcntl.F_WRLCK, ATTACHED)
    except OSError:
        return False
    return True


def creator_gone(fd: int) -> bool:
    """True if no open file other than `fd`'s holds the creator's lock."""
    if not AVAILABLE:
        return False
    answer = _lock(fd, _OFD_GETLK, fcntl.F_WRLCK, CREATOR)
    return bool(_FLOCK.unpack(answer)[0] == fcntl.F_UNLCK)


def attached_elsewhere(fd: int) -> bool:
    """True if another open file holds the segment (for tools: ls, cleanup)."""
    if not AVAILABLE:
        return True
    answer = _lock(fd, _OFD_GETLK, fcntl.F_WRLCK, ATTACHED)
    return bool(_FLOCK.unpack(answer)[0] != fcntl.F_UNLCK)
