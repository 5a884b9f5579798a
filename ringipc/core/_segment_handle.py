"""One mapped segment and the descriptor that keeps it: anonymous or named.

Every shared-memory object of ringipc (ring, topic, lock, semaphore, event)
sits on a SegmentHandle, which decides how the memory is found and when it is
freed:

* **Anonymous** (no name given, ``memfd_create`` available): the memory has no
  name anywhere; children reach it by inheriting the descriptor (fork) or by
  receiving it the way multiprocessing hands descriptors over (spawn,
  forkserver, or pickled into a pool's or queue's traffic: ``DupFd``).  The
  kernel frees it when the last process holding it exits, whatever killed
  them, so nothing can be left behind.  Plain ``pickle`` of such an object
  raises: an unrelated process could never receive the descriptor.
* **Named** (``name=`` given, or no memfd): a ``/dev/shm`` file, as before.  The
  creator removes the name on close and at exit; if the creator was killed,
  the last process to let go of the segment removes it (see _attach_locks).

The label of an anonymous segment (``ringipc-<pid>-<hex>``) is its memfd name:
``/proc/<pid>/fd`` and ``/proc/<pid>/maps`` show it as ``/memfd:<label>``.
"""
import atexit
import os
from typing import Any, Dict, Optional, Union

from multiprocessing import reduction
from multiprocessing.context import get_spawning_popen

from . import _attach_locks, _segment
from ._mapping import SharedMapping
from ..errors import SharedMemoryUnavailable

MEMFD = hasattr(os, "memfd_create")
# Every handle not yet released, held strongly: an object caught in a garbage
# cycle with its owner (a Ring in a traceback's frame) must not have its slots
# cleared by the collector before the owner's __dealloc__ releases it.
# Named ones are also reopened after fork and let go of at exit.
_live: Dict[int, "SegmentHandle"] = {}


class AnonymousNotPicklable(TypeError):
    pass


class SegmentHandle:
    __slots__ = ("name", "fd", "mapping", "size", "anonymous", "creator_pid", "observer")

    def __init__(self, name: str, fd: int, mapping: Optional[SharedMapping], size: int, anonymous: bool,
                 creator_pid: Optional[int], observer: bool = False) -> None:
        self.name, self.fd, self.mapping, self.size = name, fd, mapping, size
        self.anonymous, self.creator_pid, self.observer = anonymous, creator_pid, observer
        _live[id(self)] = self

    # -- making one -------------------------------------------------------
    @classmethod
    def create(cls, size: int, name: Optional[str] = None) -> "SegmentHandle":
        """A new zero-filled segment of `size` bytes, owned by this process."""
        if name is None and MEMFD:
            label = _segment.new_name()
            try:
                fd = os.memfd_create(label, os.MFD_CLOEXEC)
            except OSError:  # seccomp or an old kernel: fall back to a name
                return cls.create(size, label)
            try:
                os.fchmod(fd, 0o600)  # as named segments: reachable through /proc only by the owner anyway
                _reserve(fd, size, label)
                mapping = SharedMapping(fd, size)
            except BaseException:
                os.close(fd)
                raise
            return cls(label, fd, mapping, size, True, os.getpid())
        name = _segment.new_name() if name is None else _segment.normalize_name(name)
        fd = _segment.create_fd(name, size)
        try:
            mapping = SharedMapping(fd, size)
            _attach_locks.mark_creator(fd)
            _attach_locks.hold_attached(fd)
        except BaseException:
            os.close(fd)
            _segment.unlink(name)
            raise
        return cls(name, fd, mapping, size, False, os.getpid())

    @classmethod
    def open(cls, name: str, observer: bool = False) -> "SegmentHandle":
        """Map the named segment `name`; mapping is None if it is empty.  An
        `observer` (a tool reading a header) is not counted as a holder and
        never removes the name."""
        name = _segment.normalize_name(name)
        fd = _segment.open_fd(name)
        try:
            if not observer:
                _attach_locks.hold_attached(fd)
            # The last holder may have removed the name between our open and
            # our lock: then this file is an orphan nobody else can find.
            try:
                same = os.stat(os.path.join(_segment.SHM_DIR, name)).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                raise FileNotFoundError(f"no shared-memory object named {name!r} (removed while opening it)")
            size = os.fstat(fd).st_size
            mapping = SharedMapping(fd, size) if size else None
        except BaseException:
            os.close(fd)
            raise
        return cls(name, fd, mapping, size, False, None, observer)

    @classmethod
    def from_fd(cls, fd: int, label: str) -> "SegmentHandle":
        """Map an anonymous segment received as descriptor `fd` (now ours)."""
        try:
            size = os.fstat(fd).st_size
            mapping = SharedMapping(fd, size) if size else None
        except BaseException:
            os.close(fd)
            raise
        return cls(label, fd, mapping, size, True, None)

    @property
    def path(self) -> str:
        """A path that opens this segment from this process (tools, tests)."""
        if self.anonymous:
            return f"/proc/self/fd/{self.fd}"
        return os.path.join(_segment.SHM_DIR, self.name)

    def duplicate(self) -> "SegmentHandle":
        """Another handle of the same segment, in this process."""
        if self.anonymous:
            return SegmentHandle.from_fd(os.dup(self.fd), self.name)
        return SegmentHandle.open(self.name)

    # -- handing it over --------------------------------------------------
    def reduce_args(self, what: str) -> Union[str, "_AnonymousRef"]:
        """What pickles this segment: its name, or (anonymous) a descriptor
        handed over by multiprocessing.  `what` names the object in errors."""
        if not self.anonymous:
            return self.name
        if self.fd < 0:
            raise ValueError(f"{what} is closed")
        return _AnonymousRef(self.name, reduction.DupFd(self.fd))

    def plain_reduce_args(self, what: str) -> Union[str, "_AnonymousRef"]:
        """As reduce_args, for plain pickle: an anonymous segment can only go
        to a child being started (spawn, forkserver)."""
        if self.anonymous and get_spawning_popen() is None:
            raise AnonymousNotPicklable(
                f"{what} lives in anonymous shared memory: it can be passed to processes started by "
                f"multiprocessing (Process arguments, pools, and objects sent through ringipc or "
                f"multiprocessing queues and pipes), not pickled for any process; create it with "
                f"name=... to let unrelated processes attach to it by name")
        return self.reduce_args(what)

    # -- letting go -------------------------------------------------------
    def close_mapping(self) -> None:
        if self.mapping is not None:
            self.mapping.close()
            self.mapping = None

    def release(self, reap: bool = True) -> None:
        """Let go of the segment: the mapping must be closed by now (views
        released).  A named segment's name is removed by its creator, or by
        the last holder once the creator is gone -- unless `reap` is false:
        a segment that failed validation is not ours to remove.  Idempotent."""
        fd = getattr(self, "fd", -1)  # cleared by the collector at interpreter teardown
        if fd < 0:
            return  # released already; at teardown the atexit hooks have done the names
        self.fd = -1
        _live.pop(id(self), None)
        try:
            if not self.anonymous:
                if self.creator_pid == os.getpid():
                    _segment.unlink(self.name)
                elif reap and not self.observer and _attach_locks.take_last(fd) and _attach_locks.creator_gone(fd):
                    _unlink_if_same(self.name, fd)
        finally:
            os.close(fd)

    def unlink(self) -> None:
        if not self.anonymous:
            _segment.unlink(self.name)


class _AnonymousRef:
    """Pickled stand-in of an anonymous segment: its label and descriptor."""
    __slots__ = ("label", "dupfd")

    def __init__(self, label: str, dupfd: Any) -> None:
        self.label, self.dupfd = label, dupfd

    def open(self) -> SegmentHandle:
        try:
            fd = self.dupfd.detach()
        except Exception as exc:
            raise ConnectionError(
                f"cannot receive the anonymous shared-memory segment {self.label!r}: {exc!r}. Anonymous "
                f"objects reach only processes of the tree that made them, while their sender is "
                f"alive; create the object with name=... to attach to it from anywhere") from exc
        return SegmentHandle.from_fd(fd, self.label)


def open_ref(ref: Union[str, _AnonymousRef]) -> SegmentHandle:
    """The SegmentHandle a pickled reduce_args() value stands for."""
    return ref.open() if isinstance(ref, _AnonymousRef) else SegmentHandle.open(ref)


def anonymous_segments() -> Dict[str, str]:
    """Anonymous segments (no name in /dev/shm) of the processes we may look
    into: label -> a /proc/PID/fd/N path that opens it.  They show as
    ``/memfd:<label> (deleted)`` links in their holders' descriptor tables."""
    found: Dict[str, str] = {}
    prefix = "/memfd:" + _segment.PREFIX
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone, or not ours to look at
            continue
        for fd in fds:
            path = f"/proc/{pid}/fd/{fd}"
            try:
                target = os.readlink(path)
            except OSError:
                continue
            if target.startswith(prefix):
                found.setdefault(target[len("/memfd:"):].split(" ", 1)[0], path)
    return found


def _reserve(fd: int, size: int, label: str) -> None:
    os.ftruncate(fd, size)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        raise SharedMemoryUnavailable(
            exc.errno, f"cannot reserve {size} bytes ({size / 2**20:.1f} MiB) of anonymous shared memory "
            f"for {label!r}: {os.strerror(exc.errno)}. Use a smaller capacity, or raise the memory limit") from None  # type: ignore[arg-type]  # posix_fallocate sets errno


def _unlink_if_same(name: str, fd: int) -> None:
    try:
        if os.stat(os.path.join(_segment.SHM_DIR, name)).st_ino == os.fstat(fd).st_ino:
            _segment.unlink(name)
    except FileNotFoundError:
        pass


def _reopen_named_after_fork() -> None:
    # A forked child shares its parent's open files, and with them the
    # parent's locks: it would be counted as the parent (and would see the
    # creator's lock as its own).  Each named segment gets a file of its own
    # in the child, under the same descriptor number.
    for handle in list(_live.values()):
        if handle.anonymous or handle.observer or handle.fd < 0:
            continue
        try:
            fresh = os.open(f"/proc/self/fd/{handle.fd}", os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            _attach_locks.hold_attached(fresh)
            os.dup2(fresh, handle.fd, inheritable=False)
        except OSError:
            pass
        finally:
            os.close(fresh)


@atexit.register
def _release_named_at_exit() -> None:
    for handle in list(_live.values()):
        if not handle.anonymous and handle.creator_pid != os.getpid():
            # Only non-creators reap here; creators' names go with _segment's hook.
            try:
                handle.release()
            except OSError:
                pass


os.register_at_fork(after_in_child=_reopen_named_after_fork)
