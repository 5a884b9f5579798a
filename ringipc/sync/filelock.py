"""File locks as Kerrisk's chapter describes them: shared (read) and exclusive
(write) locks on a whole file or a byte range, that the kernel releases when
the holding process dies.

Linux's *open file description* locks (``F_OFD_SETLK``) are used where the
system has them: a lock belongs to one open of the file, so two FileLock
objects in one process (say, in two threads) exclude each other, where
classic POSIX record locks (``fcntl.lockf``) would silently merge them into
one process-wide lock and a ``close()`` of any descriptor of the file would
drop them all.  Elsewhere the classic locks are used, with those caveats.

No library covers this (filelock and fasteners lock whole files, exclusive or
reader/writer, through flock/lockf), so it is a small module of ours.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import time
from typing import Any, Dict, Optional, Tuple

_OFD = hasattr(fcntl, "F_OFD_SETLK")
_SETLK = fcntl.F_OFD_SETLK if _OFD else fcntl.F_SETLK
_SETLKW = fcntl.F_OFD_SETLKW if _OFD else fcntl.F_SETLKW
_GETLK = fcntl.F_OFD_GETLK if _OFD else fcntl.F_GETLK
# Polling a timed wait: the kernel's blocking form has no timeout.
_POLL_FIRST, _POLL_MAX = 0.0005, 0.02


class _Flock(ctypes.Structure):
    """struct flock, laid out by ctypes as the C compiler does (padding included)."""
    _fields_ = [("l_type", ctypes.c_short), ("l_whence", ctypes.c_short),
                ("l_start", ctypes.c_int64), ("l_len", ctypes.c_int64), ("l_pid", ctypes.c_int)]


def _flock(kind: int, start: int, length: int) -> bytes:
    # l_pid must be 0 for open-file-description locks.
    return bytes(_Flock(kind, os.SEEK_SET, start, length, 0))


class FileLock:
    """A lock on bytes [start, start + length) of `path` (length 0: to the end
    of the file, however it grows), shared or exclusive.

    ``acquire(shared=False, block=True, timeout=None)`` takes it (or converts
    a held lock to the other mode, atomically); ``release()`` gives it up;
    ``with lock:`` is exclusive, ``with lock.shared():`` shared.  The file is
    created if missing (mode 0600).  A forked child shares the open file
    description, and so the lock; pickling gives an unlocked lock on the same
    range (a new open in the receiving process)."""

    def __init__(self, path: "os.PathLike[str] | str", start: int = 0, length: int = 0) -> None:
        if start < 0 or length < 0:
            raise ValueError("start and length must be >= 0")
        self.path, self.start, self.length = os.fspath(path), start, length
        self._fd: Optional[int] = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.mode: Optional[str] = None  # "shared", "exclusive" or None

    def _set(self, kind: int, command: int) -> bool:
        if self._fd is None:
            raise ValueError(f"file lock on {self.path!r} is closed")
        try:
            fcntl.fcntl(self._fd, command, _flock(kind, self.start, self.length))
            return True
        except OSError as exc:
            if command == _SETLK and exc.errno in (errno.EACCES, errno.EAGAIN):
                return False
            raise

    def acquire(self, shared: bool = False, block: bool = True, timeout: Optional[float] = None) -> bool:
        """True once held in the mode asked; False if `block` is false or
        `timeout` passes first.  Ctrl-C interrupts a wait."""
        kind = fcntl.F_RDLCK if shared else fcntl.F_WRLCK
        if self._set(kind, _SETLK):
            self.mode = "shared" if shared else "exclusive"
            return True
        if not block:
            return False
        if timeout is None:
            self._set(kind, _SETLKW)  # the kernel queues us; EINTR runs signal handlers
            self.mode = "shared" if shared else "exclusive"
            return True
        deadline, pause = time.monotonic() + max(0.0, timeout), _POLL_FIRST
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))  # a timed wait: the kernel offers none
            pause = min(pause * 2, _POLL_MAX)
            if self._set(kind, _SETLK):
                self.mode = "shared" if shared else "exclusive"
                return True

    def release(self) -> None:
        if self.mode is None:
            raise ValueError(f"file lock on {self.path!r} is not held")
        self._set(fcntl.F_UNLCK, _SETLK)
        self.mode = None

    def holder(self) -> Optional[Dict[str, Any]]:
        """Who holds a lock that would block an exclusive one here:
        {"mode", "pid"} (pid -1 for open-file-description locks, which the
        kernel does not tie to a process), or None."""
        if self._fd is None:
            raise ValueError(f"file lock on {self.path!r} is closed")
        got = _Flock.from_buffer_copy(fcntl.fcntl(self._fd, _GETLK, _flock(fcntl.F_WRLCK, self.start, self.length)))
        if got.l_type == fcntl.F_UNLCK:
            return None
        return {"mode": "shared" if got.l_type == fcntl.F_RDLCK else "exclusive", "pid": got.l_pid}

    def shared(self, timeout: Optional[float] = None) -> "_Held":
        return _Held(self, True, timeout)

    def exclusive(self, timeout: Optional[float] = None) -> "_Held":
        return _Held(self, False, timeout)

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        """Close the file (which releases the lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd, self.mode = None, None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (FileLock, (self.path, self.start, self.length))

    def __repr__(self) -> str:
        span = f"[{self.start}:{self.start + self.length}]" if self.length else f"[{self.start}:]"
        return f"<ringipc.FileLock {self.path!r}{span} {self.mode or 'unlocked'}>"


class _Held:
    def __init__(self, lock: FileLock, shared: bool, timeout: Optional[float]) -> None:
        self.lock, self.is_shared, self.timeout = lock, shared, timeout

    def __enter__(self) -> FileLock:
        if not self.lock.acquire(self.is_shared, True, self.timeout):
            raise TimeoutError(f"could not lock {self.lock.path!r} within {self.timeout} s")
        return self.lock

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
