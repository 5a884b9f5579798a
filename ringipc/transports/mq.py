"""``mq:///NAME``: a channel over a pair of POSIX message queues (``posix_ipc``).

The listener creates ``/NAME.up`` (connector to listener) and ``/NAME.down``
(listener to connector), mode 0600, and unlinks both on close.  Message
queues keep their own boundaries, so there is no length framing; each
message carries one tag byte that tells data from the hello and end-of-file
markers.  A queue has no notion of a peer: one connector at a time, and a
peer that is killed gives no EOF (only a clean ``close`` sends one), so use
timeouts where a peer may die.

Sizes are checked up front against ``/proc/sys/fs/mqueue`` and
``RLIMIT_MSGQUEUE``; the error names the limit to raise.  Waits with a
timeout poll the queue descriptor (pollable on Linux) on the monotonic clock;
waits without one block in mq_send/mq_receive, which a signal interrupts
without taking or sending anything."""
from __future__ import annotations

import errno
import os
import resource
import select
from typing import Optional

from ..address import check_mode, register_scheme
from ..channel import DEFAULT_MAX_MESSAGE_SIZE, BaseChannel, BaseListener, deadline_after
from ..errors import AddressError, FrameError, ResourceLimitError
from ..framing import wait_fd, wait_readable

_DATA, _HELLO, _EOF = b"D", b"H", b"E"
_PROC = "/proc/sys/fs/mqueue"
# Kernel bookkeeping per message (struct msg_msg plus a priority-tree node),
# rounded up; used only to predict RLIMIT_MSGQUEUE failures.
_PER_MESSAGE_OVERHEAD = 128


def _posix_ipc():
    try:
        import posix_ipc
    except ImportError as exc:
        raise ImportError("mq:// needs the 'posix_ipc' package (pip install posix_ipc)") from exc
    return posix_ipc


def _read_limit(name: str) -> Optional[int]:
    try:
        with open(f"{_PROC}/{name}") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


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


def _explain(exc: OSError, max_messages: int, max_message_size: int) -> Exception:
    if exc.errno == errno.EMFILE:
        return ResourceLimitError(exc.errno, "this user's message queues together exceed RLIMIT_MSGQUEUE; raise it with ulimit -q")
    if exc.errno == errno.ENOSPC:
        return ResourceLimitError(exc.errno, f"the system-wide queue count is at {_PROC}/queues_max; raise fs.mqueue.queues_max")
    if exc.errno == errno.EINVAL:
        return ResourceLimitError(exc.errno, f"max_messages={max_messages}/max_message_size={max_message_size} refused; check {_PROC}/msg_max and msgsize_max")
    return exc


def _queue_names(target: str):
    if not target.startswith("/") or "/" in target[1:] or len(target) > 240:
        raise AddressError(f"mq address must be mq:///NAME with one leading slash, got mq://{target}")
    return f"{target}.up", f"{target}.down"


class MqChannel(BaseChannel):
    def __init__(self, recv_name: str, send_name: str, max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE):
        super().__init__(max_message_size)
        pi = _posix_ipc()
        self._busy = pi.BusyError
        self._interrupted = pi.SignalError
        self._rq = pi.MessageQueue(recv_name, read=True, write=False)
        try:
            self._sq = pi.MessageQueue(send_name, read=False, write=True)
        except BaseException:
            self._rq.close()
            raise
        self._eof = False
        self.transport_limit = min(self._rq.max_message_size, self._sq.max_message_size) - 1

    def fileno(self) -> int:
        self._check_open()
        return self._rq.mqd

    def _put(self, message: bytes, deadline: Optional[float]) -> None:
        if deadline is None:
            # No clock involved, so the kernel may do the waiting.  A signal
            # makes mq_send fail with EINTR having sent nothing; the handler
            # runs (and may raise) on the way round the loop.
            while True:
                try:
                    self._sq.send(message)
                    return
                except self._interrupted:
                    continue
        # Try first and wait only if the queue is full: a poll per message
        # would cost as much as the send itself.
        try:
            self._sq.send(message, timeout=0)
            return
        except self._busy:
            pass
        while True:
            if not wait_fd(self._sq.mqd, select.POLLOUT, deadline):
                raise TimeoutError("the message queue stayed full")
            try:
                self._sq.send(message, timeout=0)
                return
            except self._busy:
                continue

    def _take(self, deadline: Optional[float]) -> bytes:
        while True:
            if self._eof:
                raise EOFError("the peer closed the channel")
            try:
                if deadline is None:
                    # As in _put: EINTR takes nothing, and the handler runs on the way round.
                    message, _ = self._rq.receive()
                else:
                    message, _ = self._rq.receive(timeout=0)
            except self._interrupted:
                continue
            except self._busy:
                # Empty: wait here, where a signal handler's exception takes nothing.
                # Deadlines are kept here, on the monotonic clock, rather than
                # by mq_timedreceive, whose deadline is wall-clock time.
                if not wait_readable(self._rq.mqd, deadline):
                    raise TimeoutError("timed out waiting for the peer")
                continue
            if message[:1] == _DATA:
                return message[1:]
            self._control(message[:1])

    def _control(self, tag: bytes) -> None:
        """Act on a message that carries no data."""
        if tag == _EOF:
            self._eof = True
        elif tag != _HELLO:
            raise FrameError(f"a message with unknown tag {tag!r} arrived on the queue")

    # The everyday calls skip BaseChannel's general argument handling; any
    # other call takes the general path, so behaviour is identical.
    def send_bytes(self, buf, offset: int = 0, size: Optional[int] = None) -> None:
        if type(buf) is bytes and not offset and size is None and not self._closed and len(buf) <= self.transport_limit:
            message = _DATA + buf
            try:
                self._sq.send(message)  # _put written out for the common case
            except self._interrupted:
                self._put(message, None)  # nothing was sent; the handler runs on the way
        else:
            BaseChannel.send_bytes(self, buf, offset, size)

    def recv_bytes(self, maxlength: Optional[int] = None, timeout: Optional[float] = None) -> bytes:
        if maxlength is None and timeout is None and not self._closed and not self._eof:
            # _take and _recv_message written out for the common case, a data message.
            try:
                message = self._rq.receive()[0]
            except self._interrupted:
                message = None  # nothing taken; the general path below waits again
            if message is not None:
                if message[:1] != _DATA:
                    self._control(message[:1])
                else:
                    limit = self._limit()
                    if limit is None or len(message) - 1 <= limit:
                        return message[1:]
                    raise FrameError(
                        f"a {len(message) - 1}-byte message is over the {limit}-byte limit; it was discarded"
                    )
        return BaseChannel.recv_bytes(self, maxlength, timeout)

    def _send_message(self, view: memoryview) -> None:
        self._put(_DATA + view.tobytes(), None)

    def _recv_message(self, limit, deadline) -> bytes:
        body = self._take(deadline)
        if limit is not None and len(body) > limit:
            raise FrameError(f"a {len(body)}-byte message is over the {limit}-byte limit; it was discarded")
        return body

    def _poll(self, deadline) -> bool:
        return self._eof or wait_readable(self._rq.mqd, deadline)

    def _close(self) -> None:
        try:
            self._sq.send(_EOF, timeout=0)  # best effort: a full queue means the peer sees no EOF
        except Exception:
            pass
        self._rq.close()
        self._sq.close()


class MqListener(BaseListener):
    def __init__(self, target: str, *, mode: str = "message", max_messages: int = 10,
                 max_message_size: int = 8192):
        super().__init__()
        if check_mode(mode) != "message":
            raise ValueError("message queues carry messages only; there is no byte-stream mode for mq://")
        pi = _posix_ipc()
        self.address = f"mq://{target}"
        self._up, self._down = _queue_names(target)
        self._pid = os.getpid()
        check_limits(max_messages, max_message_size)
        self._created = []
        try:
            for name in (self._up, self._down):
                try:
                    q = pi.MessageQueue(name, pi.O_CREX, mode=0o600, max_messages=max_messages,
                                        max_message_size=max_message_size)
                except pi.ExistentialError as exc:
                    raise FileExistsError(errno.EEXIST, f"message queue {name} already exists") from exc
                except OSError as exc:
                    raise _explain(exc, max_messages, max_message_size) from exc
                self._created.append(q)
        except BaseException:
            self._unlink()
            raise

    def fileno(self) -> int:
        """Readable when something waits in the connector-to-listener queue."""
        self._check_open()
        return self._created[0].mqd

    def accept(self, timeout: Optional[float] = None) -> MqChannel:
        """Wait for a connector's hello and return the listener's end of the pair."""
        self._check_open()
        channel = MqChannel(self._up, self._down)
        try:
            deadline = deadline_after(timeout)
            while True:
                if not wait_readable(channel._rq.mqd, deadline):
                    raise TimeoutError(f"no connection on {self.address} before the timeout")
                try:
                    message, _ = channel._rq.receive(timeout=0)
                except channel._busy:
                    continue
                if message == _HELLO:
                    return channel
                # Leftovers of an earlier connection are not this peer's: drop them.
        except BaseException:
            channel.close()
            raise

    def _unlink(self) -> None:
        for q in self._created:
            try:
                if os.getpid() == self._pid:
                    q.unlink()
            except Exception:
                pass
            q.close()
        self._created = []

    def _close(self) -> None:
        self._unlink()


def connect(target: str, *, mode: str = "message", timeout: Optional[float] = None,
            max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> MqChannel:
    if check_mode(mode) != "message":
        raise ValueError("message queues carry messages only; there is no byte-stream mode for mq://")
    pi = _posix_ipc()
    up, down = _queue_names(target)
    try:
        channel = MqChannel(down, up, max_message_size)
    except pi.ExistentialError as exc:
        raise ConnectionRefusedError(errno.ECONNREFUSED, f"no message-queue listener at mq://{target}") from exc
    try:
        channel._put(_HELLO, deadline_after(timeout))
    except BaseException:
        channel.close()
        raise
    return channel


def listen(target: str, **opts) -> MqListener:
    return MqListener(target, **opts)


register_scheme("mq", connect, listen)
