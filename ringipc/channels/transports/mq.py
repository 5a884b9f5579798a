"""``mq:///NAME``: a channel over a pair of POSIX message queues (``posix_ipc``).

The listener creates ``/NAME.up`` (connector to listener) and ``/NAME.down``
(listener to connector), mode 0600, and unlinks both on close; a pair a
killed listener left is reaped by the next listener on NAME and by
``python -m ringipc cleanup`` (mq_leftovers.py).  A queue has
no notion of a peer: one connector at a time, and a peer that is killed
gives no EOF (only a clean ``close`` sends one), so use timeouts where a
peer may die.

Wire format.  Each queue has a message size S (the listener's
``max_message_size``).  A data message is the payload itself, at most S - 1
bytes: nothing is added on send or cut off on receive.  A control message is
exactly S bytes, a tag byte, an argument, then zero bytes:

* ``H`` + nonce, the hello: a connector's first message on ``.up``;
* ``A`` + that nonce, the accept: the listener's first message on ``.down``;
* ``E``, end of file: the last message of a clean close.

Everything is sent at priority 0, so each queue is strictly FIFO and an EOF
never overtakes data.  Leftovers of an earlier connection never reach the
next one: ``accept`` drops what precedes the hello on ``.up`` and empties
``.down`` before queueing its accept, and the connector drops what precedes
the accept carrying its own nonce (it may read before ``accept`` has run).
The nonce is 16 random bytes, fewer if S is under 17.

Descriptors are non-blocking and every wait is a ``poll`` on the monotonic
clock, also without a timeout: posix_ipc turns the exception of a signal
handler that interrupts a blocking mq_receive into its own SignalError, and
``poll`` lets ``close()`` from another thread wake the waiter, which then
raises :class:`~ringipc.errors.ChannelClosed`.  A message already queued
costs one system call.  ``fileno()`` is a doorbell (doorbell.py) over the
receive queue, also lit while ``poll()`` holds a data message it took off
the queue; it can report readable for the accept a connector's queue starts
with, which ``poll()`` consumes (reporting only data or EOF).

Sizes are checked up front against ``/proc/sys/fs/mqueue`` and
``RLIMIT_MSGQUEUE``; the error names the limit to raise."""
from __future__ import annotations

import errno
import os
import select
import time
from typing import Any, Callable, Optional, Tuple, Union, cast

from ..address import check_mode, register_scheme
from ._mq_fast import MqFastPath
from ..channel import (DEFAULT_MAX_MESSAGE_SIZE, BaseChannel, BaseListener, deadline_after, over_limit,
                       within_limit)
from ..doorbell import Doorbell
from ..framing import poll_ms
from ...errors import AddressError, FrameError
from .mq_leftovers import hold, reap
from .mq_limits import check_limits, explain_failure

_HELLO, _ACCEPT, _EOF = b"H", b"A", b"E"
_NONCE = 16
_READ = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
_WRITE = select.POLLOUT | select.POLLHUP | select.POLLERR


def _posix_ipc() -> Any:
    try:
        import posix_ipc
    except ImportError as exc:
        raise ImportError("mq:// needs the 'posix_ipc' package (pip install posix_ipc)") from exc
    return posix_ipc


def _control(tag: bytes, size: int, arg: bytes = b"") -> bytes:
    return (tag + arg)[:size].ljust(size, b"\0")


def _queue_names(target: str) -> Tuple[str, str]:
    if not target.startswith("/") or "/" in target[1:] or len(target) > 240:
        raise AddressError(f"mq address must be mq:///NAME with one leading slash, got mq://{target}")
    return f"{target}.up", f"{target}.down"


class MqChannel(MqFastPath, BaseChannel):
    """The everyday ``send_bytes``/``recv_bytes`` run in C (``ringipc/channels/transports/_mq_fast.pyx``),
    which hands anything else to the methods here."""

    def __init__(self, recv_name: str, send_name: str, max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        pi = _posix_ipc()
        self._busy, self._gone = pi.BusyError, pi.ExistentialError
        self._rq = pi.MessageQueue(recv_name, read=True, write=False)
        try:
            self._sq = pi.MessageQueue(send_name, read=False, write=True)
        except BaseException:
            self._rq.close()
            raise
        self._rq.block = self._sq.block = False
        self._rfd, self._sfd = self._rq.mqd, self._sq.mqd
        self._receive: Callable[[], Tuple[bytes, int]] = self._rq.receive
        self._send = self._sq.send
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._control_size = self._rq.max_message_size
        self.transport_limit = min(self._rq.max_message_size, self._sq.max_message_size) - 1
        self._eof = False
        self._expect: Optional[bytes] = None  # the accept a connector waits for; before it, everything is stale
        self._stash: Optional[bytes] = None  # a data message poll() took off the queue
        self._doorbell: Optional[Doorbell] = None  # made by fileno(): see there
        self._receiving = False
        super().__init__(max_message_size)
        self._fast_setup(self._rfd, self._sfd, self.transport_limit)
        self._refresh()

    def _limit_changed(self) -> None:
        # Kept ready: the fast path compares with it rather than calling _limit() per message.
        self._recv_limit = cast(int, self._limit())  # never None: capped by transport_limit
        self._fast_accept(self._receiving, self._recv_limit)

    def _refresh(self) -> None:
        """Whether recv_bytes may take its shortcut: nothing but data to expect."""
        self._receiving = not (self._closed or self._eof or self._expect is not None or self._stash is not None)
        self._fast_accept(self._receiving, self._recv_limit)
        if self._doorbell is not None:
            self._doorbell.show(self._stash is not None)

    def fileno(self) -> int:
        """Readable while a message (or EOF) waits.  A message ``poll()`` took off
        the queue is no longer in it, so this is a doorbell (doorbell.py) over
        the queue descriptor that also rings while such a message is held."""
        self._check_open()
        if self._doorbell is None:
            self._doorbell = Doorbell(self._rfd, self._stash is not None)
        return self._doorbell.fileno()

    def _wait(self, fd: int, events: int, deadline: Optional[float]) -> bool:
        """Wait for ``fd`` or a ``close()`` in another thread; False on timeout."""
        poller = select.poll()  # one per wait: a poll object refuses two threads at once
        poller.register(fd, events)
        poller.register(self._wake_r, select.POLLIN)
        while True:
            self._check_open()
            ready = poller.poll(poll_ms(deadline))
            if any(f == fd for f, _ in ready):
                return True
            if ready:
                # A forked copy of this channel was closed: the pipe is shared.
                try:
                    os.read(self._wake_r, 64)
                except OSError:
                    pass
            elif deadline is not None and time.monotonic() >= deadline:
                return False

    def _put(self, message: Union[bytes, memoryview], deadline: Optional[float]) -> None:
        while True:
            try:
                self._send(message)
                return
            except self._busy:
                pass
            except self._gone:
                self._check_open()
                raise
            if not self._wait(self._sfd, _WRITE, deadline):
                raise TimeoutError("the message queue stayed full")

    def _next(self, deadline: Optional[float]) -> bytes:
        """The next message on the queue, data or control."""
        while True:
            try:
                return self._receive()[0]
            except self._busy:
                pass
            except self._gone:
                self._check_open()
                raise
            if not self._wait(self._rfd, _READ, deadline):
                raise TimeoutError("timed out waiting for the peer")

    def _filter(self, message: bytes) -> Optional[bytes]:
        """``message`` if it is this connection's data; otherwise act on it and return None."""
        if len(message) != self._control_size:
            return message if self._expect is None else None
        if self._expect is not None:
            if message == self._expect:
                self._expect = None
                self._refresh()
            return None
        tag = message[:1]
        if tag == _EOF:
            self._eof = True
            self._refresh()
        elif tag != _HELLO and tag != _ACCEPT:
            raise FrameError(f"a control message with unknown tag {tag!r} arrived on the queue")
        return None

    def _take(self, deadline: Optional[float]) -> bytes:
        message: Optional[bytes]
        while True:
            if self._stash is not None:
                message, self._stash = self._stash, None
                self._refresh()
                return message
            if self._eof:
                raise EOFError("the peer closed the channel")
            message = self._filter(self._next(deadline))
            if message is not None:
                return message

    def _received_other(self, message: bytes, maxlength: Optional[int], timeout: Optional[float]) -> bytes:
        """A message the C fast path took that is not plain data within the
        limit: a control message (acted on, then the receive goes on) or data
        over the limit (refused)."""
        if self._filter(message) is not None:
            raise over_limit(len(message), self._recv_limit)
        return BaseChannel.recv_bytes(self, maxlength, timeout)

    def _send_message(self, view: memoryview) -> None:
        self._put(view, None)

    def _recv_message(self, limit: Optional[int], deadline: Optional[float]) -> bytes:
        return within_limit(self._take(deadline), limit)

    def _poll(self, deadline: Optional[float]) -> bool:
        # Take control messages off the queue here, so that only data or EOF count as ready.
        while self._stash is None and not self._eof:
            try:
                self._stash = self._filter(self._next(deadline))
            except TimeoutError:
                return False
        self._refresh()
        return True

    def _close(self) -> None:
        self._fast_off()
        self._receiving = False
        try:
            os.write(self._wake_w, b"\0")  # wakes a thread waiting in _wait
        except OSError:
            pass
        try:
            self._send(_control(_EOF, self._sq.max_message_size))  # best effort: a full queue means no EOF
        except Exception:
            pass
        if self._doorbell is not None:
            self._doorbell.close()
        self._rq.close()
        self._sq.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


class MqListener(BaseListener):
    def __init__(self, target: str, *, mode: str = "message", max_messages: int = 10,
                 max_message_size: int = 8192) -> None:
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
                self._created.append(self._create(pi, name, max_messages, max_message_size))
                if name == self._up:
                    hold(self._created[0])  # what tells a live listener from a dead one's leftovers
        except BaseException:
            self._unlink()
            raise

    def _create(self, pi: Any, name: str, max_messages: int, max_message_size: int) -> Any:
        # A pair a dead listener left is reaped once (mq_leftovers.py); a live one's is refused.
        for attempt in (1, 2):
            try:
                return pi.MessageQueue(name, pi.O_CREX, mode=0o600, max_messages=max_messages,
                                       max_message_size=max_message_size)
            except pi.ExistentialError as exc:
                if name == self._down and attempt == 1:
                    # We hold the new .up, so no live listener owns this name: a half-removed leftover.
                    try:
                        pi.unlink_message_queue(name)
                    except pi.ExistentialError:
                        pass
                elif attempt == 2 or not reap(self._up, self._down):
                    raise FileExistsError(errno.EEXIST, f"message queue {name} already exists") from exc
            except OSError as exc:
                raise explain_failure(exc, max_messages, max_message_size) from exc

    def fileno(self) -> int:
        """Readable when something waits in the connector-to-listener queue."""
        self._check_open()
        return int(self._created[0].mqd)

    def accept(self, timeout: Optional[float] = None) -> MqChannel:
        """Wait for a connector's hello and return the listener's end of the pair."""
        self._check_open()
        channel = MqChannel(self._up, self._down)
        try:
            deadline = deadline_after(timeout)
            while True:
                try:
                    hello = channel._next(deadline)
                except TimeoutError:
                    raise TimeoutError(f"no connection on {self.address} before the timeout") from None
                # Anything before the hello is a leftover of an earlier connection.
                if len(hello) == channel._control_size and hello[:1] == _HELLO:
                    break
            # Leftovers for an earlier connector; the new one would drop them
            # anyway, but they would keep the accept out of a full queue.
            down = self._created[1]
            while True:
                try:
                    down.receive(0)
                except channel._busy:
                    break
            channel._put(_control(_ACCEPT, down.max_message_size, hello[1:1 + _NONCE]), deadline)
            return channel
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
        nonce = os.urandom(min(_NONCE, channel._sq.max_message_size - 1))
        channel._expect = _control(_ACCEPT, channel._control_size, nonce)
        channel._refresh()
        channel._put(_control(_HELLO, channel._sq.max_message_size, nonce), deadline_after(timeout))
    except BaseException:
        channel.close()
        raise
    return channel


def listen(target: str, **opts: Any) -> MqListener:
    return MqListener(target, **opts)


register_scheme("mq", connect, listen)
