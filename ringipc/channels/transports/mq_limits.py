"""The kernel's limits on POSIX message queues, checked before a queue is
made, so that an error names the limit to raise instead of a bare EINVAL
or EMFILE from mq_open."""
from __future__ import annotations

import errno
import resource
from typing import Optional

from ...errors import ResourceLimitError

_PROC = "/proc/sys/fs/mqueue"
# Kernel bookkeeping per message (struct msg_msg plus a priority-tree node),
# rounded up; used only to predict RLIMIT_MSGQUEUE failures.
_PER_MESSAGE_OVERHEAD = 128


def read_sysctl(path: str) -> Optional[int]:
    """The integer in a ``/proc/sys`` file, or None if it cannot be read."""
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _read_limit(name: str) -> Optional[int]:
    return read_sysctl(f"{_PROC}/{name}")


def check_limits(max_messages: int, max_message_size: int, queues: int = 2) -> None:
    """Raise :class:`ResourceLimitError` naming the limit a queue pair would exceed."""
    for value, name, option in ((max_messages, "msg_max", "max_messages"), (max_message_size, "msgsize_max", "max_message_size")):
        limit = _read_limit(name)
        if limit is not None and value > limit:
            raise ResourceLimitError(
                errno.EINVAL,
                f"{option}={value} exceeds {_PROC}/{name}={limit}; raise it "
                f"(sysctl -w fs.mqueue.{name}={value}) or ask for less",
            )
    soft, _ = resource.getrlimit(resource.RLIMIT_MSGQUEUE)
    need = queues * max_messages * (max_message_size + _PER_MESSAGE_OVERHEAD)
    if soft != resource.RLIM_INFINITY and need > soft:
        raise ResourceLimitError(
            errno.EMFILE,
            f"{queues} queues of {max_messages} x {max_message_size} bytes need about {need} bytes, over "
            f"RLIMIT_MSGQUEUE={soft}; raise it (ulimit -q, or LimitMSGQUEUE= in a systemd unit) or ask for less",
        )


def explain_failure(exc: OSError, max_messages: int, max_message_size: int) -> Exception:
    if exc.errno == errno.EMFILE:
        return ResourceLimitError(exc.errno, "this user's message queues together exceed RLIMIT_MSGQUEUE; raise it with ulimit -q")
    if exc.errno == errno.ENOSPC:
        return ResourceLimitError(exc.errno, f"the system-wide queue count is at {_PROC}/queues_max; raise fs.mqueue.queues_max")
    if exc.errno == errno.EINVAL:
        return ResourceLimitError(exc.errno, f"max_messages={max_messages}/max_message_size={max_message_size} refused; check {_PROC}/msg_max and msgsize_max")
    return exc
