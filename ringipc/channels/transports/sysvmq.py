"""``sysvmq://KEY``: channels over one System V message queue (``sysv_ipc``).

KEY is an integer (``sysvmq://1234``, ``sysvmq://0x4d2``) or an existing
file, ``sysvmq:///PATH``, turned into a key with ``ftok(PATH, 'R')`` (two
files can map to one key: ftok keeps only the low bits of the inode).

One queue, many channels, told apart by **message type**.  Type 1 carries
hellos to the listener.  A connector picks a pair of types for its channel,
``base`` (connector to listener) and ``base + 1`` (listener to connector),
from its pid and a counter, and names them in its hello; the listener
answers on ``base + 1``.  Each end then sends on one type and receives only
its own (``msgrcv`` by type), so one listener serves any number of
connectors, each in FIFO order.  ``channel.send_type``/``recv_type`` show
the pair.  One more type, ``OWNER_TYPE``, holds a marker naming the queue's
creator, for ``python -m ringipc cleanup``.

Wire format (sysvmq_channel.py).  The listener fixes a message size S
(``max_message_size``, default ``kernel.msgmax``) and tells the connector
in its accept; ``transport_limit`` is S - 1, checked before sending
(``MessageTooLarge``).

Limits: S may not exceed ``kernel.msgmax`` and must fit the queue's byte
capacity (``kernel.msgmnb``, which only a privileged process can raise
per queue with ``queue_bytes=``); both are checked before the queue is made
and refused with ``ResourceLimitError`` naming the sysctl.  The queue's
capacity is shared by every channel on it.

No descriptor.  A System V queue cannot be polled, so ``fileno()`` raises
``io.UnsupportedOperation``.  ``recv()`` and ``send()`` without a timeout
block in ``msgrcv``/``msgsnd`` (one system call, as direct ``sysv_ipc``
use); waits with a timeout, ``poll()`` and ``accept(timeout)`` try without
blocking and sleep between tries.  ``poll()`` takes the message off the
queue and keeps it for the next receive.  A peer that dies sends no
end-of-file: timed waits notice that its process (the one that made the
handshake) has gone and report ``EOFError``; a wait without timeout does
not.

Cleanup.  The listener created the queue and removes it (``IPC_RMID``) once
it and every channel it accepted are closed, or at normal exit; a connector
sees the removal as end-of-file.  A creator killed (SIGKILL, or SIGTERM
without a handler) leaves the queue behind: the next listener on the same
key removes it, and so does ``python -m ringipc cleanup``, both only when
the queue's owner marker names a dead process (sysvmq_queue.py)."""
from __future__ import annotations

import errno
import io
import itertools
import os
import struct
import threading
from typing import Any, Optional

from ..address import check_mode, register_scheme
from ..channel import DEFAULT_MAX_MESSAGE_SIZE, BaseListener, deadline_after
from .sysvmq_channel import SysvMqChannel
from .sysvmq_queue import (HELLO_TYPE, MAGIC, OWNER_TYPE, Owner, check_limits, create_queue, list_queues,
                           parse_key, peer_alive, read_limit, remove_orphans, sysv_ipc)

__all__ = ["SysvMqChannel", "SysvMqListener", "check_limits", "connect", "list_queues", "listen",
           "parse_key", "read_limit", "remove_orphans"]

_HELLO = struct.Struct("<9s16sIQ")  # magic + "H", nonce, pid, base type
_ACCEPT = struct.Struct("<9s16sII")  # magic + "A", nonce, pid, message size S
_counter = itertools.count()
_counter_lock = threading.Lock()


def _message_only(mode: str) -> None:
    if check_mode(mode) != "message":
        raise ValueError("message queues carry messages only; there is no byte-stream mode for sysvmq://")


class SysvMqListener(BaseListener):
    def __init__(self, target: str, *, mode: str = "message", max_message_size: Optional[int] = None,
                 queue_bytes: Optional[int] = None, channel_max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        super().__init__()
        _message_only(mode)
        self.key = parse_key(target)
        size = max_message_size
        if size is None:
            size = min(read_limit("msgmax") or 8192, queue_bytes or read_limit("msgmnb") or 16384)
        if size < 2:
            raise ValueError("max_message_size must be at least 2 (S - 1 payload bytes, S for control)")
        check_limits(size, queue_bytes)
        self.message_size = size
        self._channel_max = channel_max_message_size
        self._queue = create_queue(self.key, size, queue_bytes)
        self._owner = Owner(self._queue)
        self.address = f"sysvmq://{target}"
        self.id = self._queue.id

    def fileno(self) -> int:
        self._check_open()
        raise io.UnsupportedOperation("a System V message queue has no file descriptor; use accept(timeout)")

    def accept(self, timeout: Optional[float] = None) -> SysvMqChannel:
        """Take the next hello (type 1) of a live connector and answer it."""
        self._check_open()
        deadline = deadline_after(timeout)
        probe = SysvMqChannel(self._queue, send_type=HELLO_TYPE, recv_type=HELLO_TYPE, message_size=self.message_size)
        try:
            while True:
                try:
                    hello = probe._next(deadline)
                except TimeoutError:
                    raise TimeoutError(f"no connection on {self.address} before the timeout") from None
                except EOFError:  # the queue was removed: by our close() in another thread, or by hand
                    self._check_open()
                    raise ConnectionResetError(errno.ECONNRESET, f"the queue of {self.address} was removed") from None
                if len(hello) != _HELLO.size:
                    continue
                magic, nonce, pid, base = _HELLO.unpack(hello)
                if magic != MAGIC + b"H" or base < 2 or base % 2 or base + 1 >= OWNER_TYPE or not peer_alive(pid):
                    continue  # not a hello, or its connector is gone
                self._owner.acquire()
                channel = SysvMqChannel(self._queue, send_type=base + 1, recv_type=base,
                                        message_size=self.message_size, peer_pid=pid, owner=self._owner,
                                        max_message_size=self._channel_max)
                try:
                    channel._put(_ACCEPT.pack(MAGIC + b"A", nonce, os.getpid(), self.message_size), deadline)
                except BaseException:
                    channel._eof = True  # nothing to say end-of-file to
                    channel.close()
                    raise
                return channel
        finally:
            probe._closed = True  # a view on the listener's queue; nothing of its own to close
            probe._fast_off()

    def _close(self) -> None:
        self._owner.release()


def connect(target: str, *, mode: str = "message", timeout: Optional[float] = None,
            max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> SysvMqChannel:
    _message_only(mode)
    pi = sysv_ipc()
    key = parse_key(target)
    deadline = deadline_after(timeout)
    msgmax = read_limit("msgmax") or 8192
    try:
        queue = pi.MessageQueue(key, max_message_size=msgmax)
    except pi.ExistentialError as exc:
        raise ConnectionRefusedError(errno.ECONNREFUSED, f"no System V message queue at sysvmq://{target}") from exc
    with _counter_lock:
        k = ((os.getpid() & 0x3FFFFF) << 7) | (next(_counter) & 0x7F)
    base = 2 + 2 * k
    nonce = os.urandom(16)
    # A stand-in until the accept says the listener's message size.
    channel = SysvMqChannel(queue, send_type=base, recv_type=base + 1, message_size=msgmax)
    try:
        try:
            channel._put(_HELLO.pack(MAGIC + b"H", nonce, os.getpid(), base), deadline, HELLO_TYPE)
        except BrokenPipeError as exc:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"the queue at sysvmq://{target} went away") from exc
        while True:
            try:
                answer = channel._next(deadline)
            except EOFError as exc:
                raise ConnectionResetError(errno.ECONNRESET, f"the listener at sysvmq://{target} closed before accepting") from exc
            except TimeoutError:
                raise TimeoutError(f"no accept from sysvmq://{target} before the timeout") from None
            if len(answer) == _ACCEPT.size:
                magic, got_nonce, pid, size = _ACCEPT.unpack(answer)
                if magic == MAGIC + b"A" and got_nonce == nonce:
                    break
    finally:
        channel._closed = True  # the stand-in sends no end-of-file
        channel._fast_off()
    sized = pi.MessageQueue(key, max_message_size=size)
    return SysvMqChannel(sized, send_type=base, recv_type=base + 1, message_size=size, peer_pid=pid,
                         max_message_size=max_message_size)


def listen(target: str, *, max_message_size: Optional[int] = None, **opts: Any) -> SysvMqListener:
    return SysvMqListener(target, max_message_size=max_message_size, **opts)


register_scheme("sysvmq", connect, listen)
