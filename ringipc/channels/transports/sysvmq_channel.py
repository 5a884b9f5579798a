"""One end of a ``sysvmq://`` channel: a pair of message types on one
System V queue (the handshake that picks them is in sysvmq.py).

Wire format.  The queue's message size S is fixed by the listener.  A data
message is the payload itself, 1 to S - 1 bytes: nothing added on send or
cut off on receive.  A zero-length message is end-of-file (a clean
``close``); an S-byte message is a control message: tag ``Z`` stands for an
empty data message.  So ``transport_limit`` is S - 1.

The everyday ``send_bytes``/``recv_bytes`` run in C (``_sysvmq_fast.pyx``),
blocking in ``msgsnd``/``msgrcv`` as direct ``sysv_ipc`` use does; it hands
everything else to the methods here.  A queue cannot be polled, so waits
with a timeout try without blocking and sleep between tries (50
microseconds growing to 2 ms), and notice there that the peer's process
has gone (``EOFError``, ``BrokenPipeError``); a wait without timeout does
not."""
from __future__ import annotations

import errno
import io
import time
from typing import Any, Callable, Optional, Tuple, cast

from ..channel import DEFAULT_MAX_MESSAGE_SIZE, BaseChannel, within_limit
from ...errors import FrameError
from ._sysvmq_fast import SysvMqFastPath
from .sysvmq_queue import Owner, peer_alive, read_limit, sysv_ipc

_EMPTY = b"Z"
_SLEEP_FIRST, _SLEEP_MAX = 50e-6, 2e-3


def control(tag: bytes, size: int) -> bytes:
    return tag.ljust(size, b"\0")


class SysvMqChannel(SysvMqFastPath, BaseChannel):
    def __init__(self, queue: Any, *, send_type: int, recv_type: int, message_size: int, peer_pid: int = 0,
                 owner: Optional[Owner] = None, max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        pi = sysv_ipc()
        self._pi = pi
        self._queue = queue
        self._owner = owner
        self.key = queue.key
        self.send_type, self.recv_type = send_type, recv_type
        self.peer_pid = peer_pid
        self._size = message_size
        self.transport_limit = message_size - 1
        self._send = queue.send
        self._receive: Callable[[bool, int], Tuple[bytes, int]] = queue.receive
        self._Error, self._Busy, self._Gone = pi.Error, pi.BusyError, pi.ExistentialError
        self._stash: Optional[bytes] = None  # a message poll() or the C path took off the queue
        self._eof = False
        self._recv_limit = 0
        super().__init__(max_message_size)
        self._fast_setup(queue.id, send_type, recv_type, message_size)
        self._refresh()

    def _limit_changed(self) -> None:
        self._recv_limit = cast(int, self._limit())  # never None: capped by transport_limit
        self._refresh()

    def _refresh(self) -> None:
        """Let the C path receive only while nothing but data is to be expected."""
        idle = self._stash is None and not self._eof and not self._closed
        self._fast_accept(self._recv_limit if idle else -1)

    def fileno(self) -> int:
        self._check_open()
        raise io.UnsupportedOperation(
            "a System V message queue has no file descriptor; wait with poll(timeout) or recv(timeout)")

    # --- sending ---------------------------------------------------------------------------
    def _send_message(self, view: memoryview) -> None:
        message = bytes(view) if len(view) else control(_EMPTY, self._size)
        self._put(message, None)

    def _put(self, message: bytes, deadline: Optional[float], mtype: int = 0) -> None:
        """Send ``message`` (type ``mtype``, else ours); waits as described above."""
        delay = _SLEEP_FIRST
        while True:
            self._check_open()
            try:
                self._send(message, deadline is None, mtype or self.send_type)
                return
            except self._Busy:
                pass
            except self._Gone as exc:
                raise BrokenPipeError(errno.EPIPE, "the message queue was removed (the listener closed)") from exc
            except OSError as exc:
                if exc.errno in (errno.EINVAL, errno.EIDRM):
                    raise BrokenPipeError(errno.EPIPE, "the message queue was removed (the listener closed)") from exc
                raise
            except self._Error:
                continue  # a signal interrupted msgsnd; its handler has run (and did not raise)
            if not peer_alive(self.peer_pid):
                raise BrokenPipeError(errno.EPIPE, f"the peer (pid {self.peer_pid}) has exited")
            if time.monotonic() >= deadline:  # type: ignore[operator]  # only with a deadline: a blocking call never raises Busy
                raise TimeoutError("the message queue stayed full")
            time.sleep(delay)
            delay = min(delay * 2, _SLEEP_MAX)

    # --- receiving -------------------------------------------------------------------------
    def _received_other(self, message: bytes, maxlength: Optional[int], timeout: Optional[float]) -> bytes:
        """A message the C path took that is not plain data within the limit."""
        self._stash = message
        self._refresh()
        return BaseChannel.recv_bytes(self, maxlength, timeout)

    def _next(self, deadline: Optional[float]) -> bytes:
        """The next message of our type: blocking without a deadline, else tried and slept on."""
        delay = _SLEEP_FIRST
        while True:
            self._check_open()
            try:
                return self._receive(deadline is None, self.recv_type)[0]
            except self._Busy:
                pass
            except self._Gone:
                self._set_eof()
                raise EOFError("the message queue was removed (the listener closed)") from None
            except OSError as exc:
                if exc.errno == errno.E2BIG:
                    self._discard_oversized()
                    raise FrameError(f"a message over the queue's {self._size}-byte message size arrived; it was discarded") from None
                raise
            except self._Error:
                continue  # a signal interrupted msgrcv; its handler has run (and did not raise)
            if not peer_alive(self.peer_pid):
                try:  # anything it sent before it went is still ours
                    return self._receive(False, self.recv_type)[0]
                except self._Busy:
                    self._set_eof()
                    raise EOFError(f"the peer (pid {self.peer_pid}) has exited") from None
            if time.monotonic() >= deadline:  # type: ignore[operator]  # only with a deadline: a blocking call never raises Busy
                raise TimeoutError("timed out waiting for the peer")
            time.sleep(delay)
            delay = min(delay * 2, _SLEEP_MAX)

    def _set_eof(self) -> None:
        self._eof = True
        self._refresh()

    def _discard_oversized(self) -> None:
        big = self._pi.MessageQueue(self.key, max_message_size=read_limit("msgmax") or 65536)
        try:
            big.receive(False, self.recv_type)
        except self._Error:
            pass

    def _take(self, deadline: Optional[float]) -> bytes:
        if self._stash is not None:
            message, self._stash = self._stash, None
            self._refresh()
        elif self._eof:
            raise EOFError("the peer closed the channel")
        else:
            message = self._next(deadline)
        if not message:
            self._set_eof()
            raise EOFError("the peer closed the channel")
        if len(message) == self._size:
            if message[:1] != _EMPTY:
                raise FrameError(f"a control message with unknown tag {message[:1]!r} arrived on the queue")
            return b""
        return message

    def _recv_message(self, limit: Optional[int], deadline: Optional[float]) -> bytes:
        return within_limit(self._take(deadline), limit)

    def _poll(self, deadline: Optional[float]) -> bool:
        if self._stash is not None or self._eof:
            return True
        try:
            self._stash = self._next(deadline)
        except TimeoutError:
            return False
        except EOFError:
            return True
        self._refresh()
        return True

    def _close(self) -> None:
        self._fast_off()
        try:
            if self._eof:
                # The peer has closed: what we sent it and it never read is nobody's now.
                while True:
                    self._receive(False, self.send_type)
            else:
                self._send(b"", False, self.send_type)  # end-of-file; best effort on a full queue
        except Exception:
            pass
        if self._owner is not None:
            self._owner.release()
