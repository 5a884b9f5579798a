"""Named POSIX shared-memory segments: create (reserved up front), open, unlink.

Objects without a name use anonymous memory instead (see _segment_handle).

Only this module touches ``/dev/shm`` names.  Every segment ringipc creates is
named ``ringipc-<creator pid>-<random>`` (or ``ringipc-<user name>``), created
``O_EXCL`` with mode 0600, and has its memory reserved with ``posix_fallocate``
so that a too-small ``/dev/shm`` fails here, with the sizes in the message,
instead of as a SIGBUS on first touch.
"""
import atexit
import errno
import mmap
import os
import secrets
from typing import Dict, List, Optional, Tuple

import posix_ipc

from ..errors import SharedMemoryUnavailable

PREFIX = "ringipc-"
SHM_DIR = "/dev/shm"

# name -> pid of the creating process: only that process unlinks at exit.
_owned: Dict[str, int] = {}


def normalize_name(name: object) -> str:
    """The segment name for a user-given ring name (prefix added if missing)."""
    if not isinstance(name, str) or not name or "/" in name.lstrip("/"):
        raise ValueError(f"ring name must be a non-empty string without '/', not {name!r}")
    name = name.lstrip("/")
    return name if name.startswith(PREFIX) else PREFIX + name


def new_name() -> str:
    return f"{PREFIX}{os.getpid()}-{secrets.token_hex(6)}"


def _free_bytes() -> Optional[int]:
    try:
        st = os.statvfs(SHM_DIR)
        return st.f_bavail * st.f_frsize
    except OSError:
        return None


def create(name: str, size: int) -> mmap.mmap:
    """Create and map a new segment of `size` bytes; returns the mmap."""
    fd = create_fd(name, size)
    try:
        return mmap.mmap(fd, size)
    except BaseException:
        unlink(name)
        raise
    finally:
        os.close(fd)


def create_fd(name: str, size: int) -> int:
    """Create a new segment of `size` bytes (reserved); returns a
    close-on-exec descriptor of it for the caller to map and close."""
    try:
        shm = posix_ipc.SharedMemory("/" + name, flags=posix_ipc.O_CREX, mode=0o600)
    except posix_ipc.ExistentialError as exc:
        raise FileExistsError(errno.EEXIST, f"shared-memory segment {name!r} already exists") from exc
    except (posix_ipc.PermissionsError, OSError) as exc:
        raise SharedMemoryUnavailable(errno.EACCES, f"cannot create shared memory {name!r}: {exc}") from exc
    try:
        try:
            os.posix_fallocate(shm.fd, 0, size)
        except OSError as exc:
            free = _free_bytes()
            free_text = "unknown" if free is None else f"{free} bytes ({free / 2**20:.1f} MiB)"
            raise SharedMemoryUnavailable(
                exc.errno,
                f"cannot reserve {size} bytes ({size / 2**20:.1f} MiB) of shared memory for ring {name!r}: "
                f"{os.strerror(exc.errno)}; free in {SHM_DIR}: {free_text}. Use a smaller capacity, or "  # type: ignore[arg-type]  # posix_fallocate sets errno
                f"enlarge {SHM_DIR} (for Docker: --shm-size)",
            ) from None
        fd = os.dup(shm.fd)  # os.dup: close-on-exec
    except BaseException:
        shm.close_fd()
        _unlink_quietly(name)
        raise
    shm.close_fd()
    _owned[name] = os.getpid()
    return fd


def open_fd(name: str) -> int:
    """A close-on-exec descriptor of the existing segment `name`."""
    try:
        shm = posix_ipc.SharedMemory("/" + name)
    except posix_ipc.ExistentialError as exc:
        raise FileNotFoundError(errno.ENOENT, f"no shared-memory object named {name!r} (already closed by its "
                                f"creator, or anonymous: then pass the object itself to the process)") from exc
    except posix_ipc.PermissionsError as exc:
        raise PermissionError(errno.EACCES, f"no permission to open shared memory {name!r}") from exc
    try:
        return os.dup(shm.fd)
    finally:
        shm.close_fd()


def open_existing(name: str) -> Tuple[Optional[mmap.mmap], int]:
    """Map an existing segment; returns (mmap, size)."""
    try:
        shm = posix_ipc.SharedMemory("/" + name)
    except posix_ipc.ExistentialError as exc:
        raise FileNotFoundError(errno.ENOENT, f"no ring named {name!r} (already closed by its creator?)") from exc
    except posix_ipc.PermissionsError as exc:
        raise PermissionError(errno.EACCES, f"no permission to open ring {name!r}") from exc
    try:
        size = os.fstat(shm.fd).st_size
        if size == 0:
            return None, 0
        return mmap.mmap(shm.fd, size), size
    finally:
        shm.close_fd()


def names() -> List[str]:
    """The names of every ringipc segment in /dev/shm, sorted (none if it is missing)."""
    try:
        return sorted(n for n in os.listdir(SHM_DIR) if n.startswith(PREFIX))
    except FileNotFoundError:
        return []


def unlink(name: str) -> None:
    """Remove the name; mappings that exist stay valid until unmapped."""
    _owned.pop(name, None)
    try:
        posix_ipc.unlink_shared_memory("/" + name)
    except posix_ipc.ExistentialError:
        pass


def _unlink_quietly(name: str) -> None:
    try:
        posix_ipc.unlink_shared_memory("/" + name)
    except posix_ipc.Error:
        pass


def disown(name: str) -> None:
    _owned.pop(name, None)


@atexit.register
def _unlink_owned_at_exit() -> None:
    me = os.getpid()
    for name, pid in list(_owned.items()):
        if pid == me:  # a forked child inherits _owned but owns nothing
            unlink(name)
