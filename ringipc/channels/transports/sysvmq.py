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

Wire format.  The listener fixes a message size S (``max_message_size``,
default ``kernel.msgmax``) and tells the connector in its accept.  A data
message is the payload itself, 1 to S - 1 bytes: nothing added on send or
cut off on receive.  A zero-length message is end-of-file (a clean
``close``); an S-byte message is a control message: tag ``Z`` stands for an
empty data message.  So ``transport_limit`` is S - 1, checked before
sending (``MessageTooLarge``).

Limits: S may not exceed ``kernel.msgmax`` and must fit the queue's byte
capacity (``kernel.msgmnb``, which only a privileged process can raise
per queue with ``queue_bytes=``); both are checked before the queue is made
and refused with ``ResourceLimitError`` naming the sysctl.  The queue's
capacity is shared by every channel on it.

No descriptor.  A System V queue cannot be polled, so ``fileno()`` raises
``io.UnsupportedOperation``.  ``recv()`` and ``send()`` without a timeout
block in ``msgrcv``/``msgsnd`` (one system call, as direct ``sysv_ipc``
use); waits with a timeout, ``poll()`` and ``accept(timeout)`` try without
blocking and sleep between tries (50 microseconds growing to 2 ms).
``poll()`` takes the message off the queue and keeps it for the next
receive.  A peer that dies sends no end-of-file: timed waits notice that
its process (the one that made the handshake) has gone and report
``EOFError``; a wait without timeout does not.

Cleanup.  The listener created the queue and removes it (``IPC_RMID``) once
it and every channel it accepted are closed, or at exit; a connector sees
the removal as end-of-file.  A creator killed with SIGKILL leaves the queue
behind: ``python -m ringipc cleanup`` finds ringipc's queues by their owner
marker and removes those whose creator is dead."""
from __future__ import annotations

import atexit
import errno
import io
import itertools
import os
import struct
import threading
import time
from typing import Optional

from ..address import check_mode, register_scheme
from ..channel import DEFAULT_MAX_MESSAGE_SIZE, BaseChannel, BaseListener, deadline_after
from ...errors import AddressError, FrameError, ResourceLimitError

HELLO_TYPE = 1
OWNER_TYPE = 0x7FFFFFFF
_MAGIC = b"RGSYSVQ1"
_HELLO = struct.Struct("<9s16sIQ")  # magic + "H", nonce, pid, base type
_ACCEPT = struct.Struct("<9s16sII")  # magic + "A", nonce, pid, message size S
_OWNER = struct.Struct("<9sI")  # magic + "O", creator pid
_EMPTY = b"Z"
_FTOK_ID = ord("R")
_PROC = "/proc/sys/kernel"
_SLEEP_FIRST, _SLEEP_MAX = 50e-6, 2e-3
_counter = itertools.count()
_counter_lock = threading.Lock()


def _sysv_ipc():
    try:
        import sysv_ipc
    except ImportError as exc:
        raise ImportError("sysvmq:// needs the 'sysv_ipc' package (pip install sysv_ipc)") from exc
    return sysv_ipc


def read_limit(name: str) -> Optional[int]:
    """``/proc/sys/kernel/NAME`` (msgmax, msgmnb, msgmni), or None if unreadable."""
    try:
        with open(f"{_PROC}/{name}") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def parse_key(target: str) -> int:
    """The integer key of a ``sysvmq://`` target."""
    if target.startswith("/"):
        if not os.path.exists(target):
            raise AddressError(f"sysvmq://{target}: the file must exist (its inode makes the key, via ftok)")
        return _sysv_ipc().ftok(target, _FTOK_ID, silence_warning=True)
    try:
        key = int(target, 0)
    except ValueError:
        raise AddressError(f"sysvmq address must be sysvmq://KEY (an integer) or sysvmq:///PATH, got sysvmq://{target}") from None
    if not 0 < key <= 0x7FFFFFFF:
        raise AddressError(f"a System V key must be 1..0x7fffffff (0 is IPC_PRIVATE), got {key}")
    return key


def _peer_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: it will never send again)."""
    if pid <= 0:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    state = stat[stat.rfind(b")") + 2:][:1]
    return state not in (b"Z", b"X")


def _control(tag: bytes, size: int) -> bytes:
    return tag.ljust(size, b"\0")


def check_limits(message_size: int, queue_bytes: Optional[int] = None) -> None:
    """Raise :class:`ResourceLimitError` if messages of ``message_size`` bytes
    cannot travel through a queue here."""
    msgmax = read_limit("msgmax")
    if msgmax is not None and message_size > msgmax:
        raise ResourceLimitError(
            errno.EINVAL,
            f"max_message_size={message_size} exceeds {_PROC}/msgmax={msgmax}; raise it "
            f"(sysctl -w kernel.msgmax={message_size}) or ask for less")
    capacity = queue_bytes or read_limit("msgmnb")
    if capacity is not None and message_size > capacity:
        raise ResourceLimitError(
            errno.EINVAL,
            f"max_message_size={message_size} does not fit the queue's {capacity} bytes "
            f"({_PROC}/msgmnb); raise it (sysctl -w kernel.msgmnb=...) or ask for less")


class _Owner:
    """The creator's hold on the queue: removed when the listener and every
    channel it accepted are closed, or at exit (only in the creating process)."""

    def __init__(self, queue):
        self.queue = queue
        self.pid = os.getpid()
        self.refs = 1
        self.lock = threading.Lock()
        atexit.register(self.remove)

    def acquire(self) -> None:
        with self.lock:
            self.refs += 1

    def release(self) -> None:
        with self.lock:
            self.refs -= 1
            last = self.refs == 0
        if last:
            self.remove()

    def remove(self) -> None:
        if os.getpid() != self.pid or self.queue is None:
            return  # a forked child must not take the parent's queue away
        queue, self.queue = self.queue, None
        try:
            queue.remove()
        except Exception:
            pass
        atexit.unregister(self.remove)


class SysvMqChannel(BaseChannel):
    def __init__(self, queue, *, send_type: int, recv_type: int, message_size: int, peer_pid: int = 0,
                 owner: Optional[_Owner] = None, max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE):
        pi = _sysv_ipc()
        self._pi = pi
        self._queue = queue
        self._owner = owner
        self.key = queue.key
        self.send_type, self.recv_type = send_type, recv_type
        self.peer_pid = peer_pid
        self._size = message_size
        self.transport_limit = message_size - 1
        self._send, self._receive = queue.send, queue.receive
        self._Error, self._Busy, self._Gone = pi.Error, pi.BusyError, pi.ExistentialError
        self._stash = None  # a message poll() took off the queue
        self._eof = False
        self._recv_limit = 0
        super().__init__(max_message_size)

    def _limit_changed(self) -> None:
        self._recv_limit = self._limit()

    def fileno(self) -> int:
        self._check_open()
        raise io.UnsupportedOperation(
            "a System V message queue has no file descriptor; wait with poll(timeout) or recv(timeout)")

    # --- sending ---------------------------------------------------------------------------
    def send_bytes(self, buf, offset=0, size=None):
        # The everyday call goes straight to msgsnd; everything else through BaseChannel.
        if type(buf) is bytes and size is None and not offset and 0 < len(buf) < self._size and not self._closed:
            try:
                self._send(buf, True, self.send_type)
                return
            except self._Error:
                pass  # interrupted, or the queue is gone: the general path says which
        BaseChannel.send_bytes(self, buf, offset, size)

    def _send_message(self, view: memoryview) -> None:
        message = bytes(view) if len(view) else _control(_EMPTY, self._size)
        self._put(message, None)

    def _put(self, message: bytes, deadline: Optional[float], mtype: int = 0) -> None:
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
            if not _peer_alive(self.peer_pid):
                raise BrokenPipeError(errno.EPIPE, f"the peer (pid {self.peer_pid}) has exited")
            if time.monotonic() >= deadline:
                raise TimeoutError("the message queue stayed full")
            time.sleep(delay)
            delay = min(delay * 2, _SLEEP_MAX)

    # --- receiving -------------------------------------------------------------------------
    def recv_bytes(self, maxlength=None, timeout=None):
        if maxlength is None and timeout is None and self._stash is None and not self._eof and not self._closed:
            try:
                message = self._receive(True, self.recv_type)[0]
            except (self._Error, OSError):
                pass  # interrupted, gone, or oversized: the general path sorts it out
            else:
                if 0 < len(message) < self._size and len(message) <= self._recv_limit:
                    return message
                self._stash = message
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
                self._eof = True
                raise EOFError("the message queue was removed (the listener closed)") from None
            except OSError as exc:
                if exc.errno == errno.E2BIG:
                    self._discard_oversized()
                    raise FrameError(f"a message over the queue's {self._size}-byte message size arrived; it was discarded") from None
                raise
            except self._Error:
                continue  # a signal interrupted msgrcv; its handler has run (and did not raise)
            if not _peer_alive(self.peer_pid):
                try:  # anything it sent before it went is still ours
                    return self._receive(False, self.recv_type)[0]
                except self._Busy:
                    self._eof = True
                    raise EOFError(f"the peer (pid {self.peer_pid}) has exited") from None
            if time.monotonic() >= deadline:
                raise TimeoutError("timed out waiting for the peer")
            time.sleep(delay)
            delay = min(delay * 2, _SLEEP_MAX)

    def _discard_oversized(self) -> None:
        big = self._pi.MessageQueue(self.key, max_message_size=read_limit("msgmax") or 65536)
        try:
            big.receive(False, self.recv_type)
        except self._Error:
            pass

    def _take(self, deadline: Optional[float]) -> bytes:
        if self._stash is not None:
            message, self._stash = self._stash, None
        elif self._eof:
            raise EOFError("the peer closed the channel")
        else:
            message = self._next(deadline)
        if not message:
            self._eof = True
            raise EOFError("the peer closed the channel")
        if len(message) == self._size:
            if message[:1] != _EMPTY:
                raise FrameError(f"a control message with unknown tag {message[:1]!r} arrived on the queue")
            return b""
        return message

    def _recv_message(self, limit, deadline) -> bytes:
        body = self._take(deadline)
        if limit is not None and len(body) > limit:
            raise FrameError(f"a {len(body)}-byte message is over the {limit}-byte limit; it was discarded")
        return body

    def _poll(self, deadline) -> bool:
        if self._stash is not None or self._eof:
            return True
        try:
            self._stash = self._next(deadline if deadline is not None else None)
        except TimeoutError:
            return False
        except EOFError:
            return True
        return True

    def _close(self) -> None:
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


class SysvMqListener(BaseListener):
    def __init__(self, target: str, *, mode: str = "message", max_message_size: Optional[int] = None,
                 queue_bytes: Optional[int] = None, channel_max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE):
        super().__init__()
        if check_mode(mode) != "message":
            raise ValueError("message queues carry messages only; there is no byte-stream mode for sysvmq://")
        pi = _sysv_ipc()
        self._pi = pi
        self.key = parse_key(target)
        size = max_message_size
        if size is None:
            size = min(read_limit("msgmax") or 8192, queue_bytes or read_limit("msgmnb") or 16384)
        if size < 2:
            raise ValueError("max_message_size must be at least 2 (S - 1 payload bytes, S for control)")
        check_limits(size, queue_bytes)
        self.message_size = size
        self._channel_max = channel_max_message_size
        try:
            queue = pi.MessageQueue(self.key, pi.IPC_CREX, mode=0o600, max_message_size=size)
        except pi.ExistentialError as exc:
            raise FileExistsError(errno.EEXIST, f"a System V message queue with key {self.key:#x} already exists") from exc
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise ResourceLimitError(exc.errno, f"the system's queue count is at {_PROC}/msgmni; raise kernel.msgmni") from exc
            raise
        self._owner = _Owner(queue)
        self._queue = queue
        try:
            if queue_bytes is not None:
                try:
                    queue.max_size = queue_bytes
                except pi.PermissionsError as exc:
                    raise ResourceLimitError(
                        errno.EPERM, f"queue_bytes={queue_bytes} exceeds {_PROC}/msgmnb and this process "
                        "may not raise it (CAP_SYS_RESOURCE); sysctl -w kernel.msgmnb=... instead") from exc
            queue.send(_OWNER.pack(_MAGIC + b"O", os.getpid()), False, OWNER_TYPE)
        except BaseException:
            self._owner.release()
            raise
        self.address = f"sysvmq://{target}"
        self.id = queue.id

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
                if magic != _MAGIC + b"H" or base < 2 or base % 2 or base + 1 >= OWNER_TYPE or not _peer_alive(pid):
                    continue  # not a hello, or its connector is gone
                self._owner.acquire()
                channel = SysvMqChannel(self._queue, send_type=base + 1, recv_type=base,
                                        message_size=self.message_size, peer_pid=pid, owner=self._owner,
                                        max_message_size=self._channel_max)
                try:
                    channel._put(_ACCEPT.pack(_MAGIC + b"A", nonce, os.getpid(), self.message_size), deadline)
                except BaseException:
                    channel._eof = True  # nothing to say end-of-file to
                    channel.close()
                    raise
                return channel
        finally:
            probe._closed = True  # a view on the listener's queue; nothing of its own to close

    def _close(self) -> None:
        self._owner.release()


def connect(target: str, *, mode: str = "message", timeout: Optional[float] = None,
            max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> SysvMqChannel:
    if check_mode(mode) != "message":
        raise ValueError("message queues carry messages only; there is no byte-stream mode for sysvmq://")
    pi = _sysv_ipc()
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
            channel._put(_HELLO.pack(_MAGIC + b"H", nonce, os.getpid(), base), deadline, HELLO_TYPE)
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
                if magic == _MAGIC + b"A" and got_nonce == nonce:
                    break
    finally:
        channel._closed = True  # the stand-in sends no end-of-file
    sized = pi.MessageQueue(key, max_message_size=size)
    return SysvMqChannel(sized, send_type=base, recv_type=base + 1, message_size=size, peer_pid=pid,
                         max_message_size=max_message_size)


def listen(target: str, *, max_message_size: Optional[int] = None, **opts) -> SysvMqListener:
    return SysvMqListener(target, max_message_size=max_message_size, **opts)


# --- python -m ringipc cleanup -------------------------------------------------------------
def list_queues():
    """ringipc's System V queues this user can see: dicts with key, id, creator pid, orphaned."""
    try:
        pi = _sysv_ipc()
        with open("/proc/sysvipc/msg") as f:
            lines = f.read().splitlines()[1:]
    except (ImportError, OSError):
        return []
    found = []
    for line in lines:
        fields = line.split()
        try:
            key, msqid = int(fields[0]), int(fields[1])
        except (IndexError, ValueError):
            continue
        if key == 0:
            continue  # IPC_PRIVATE: never ours
        try:
            queue = pi.MessageQueue(key, max_message_size=_OWNER.size)
            marker = queue.receive(False, OWNER_TYPE)[0]
        except Exception:
            continue  # not ours to read, gone, or no marker
        try:
            magic, pid = _OWNER.unpack(marker) if len(marker) == _OWNER.size else (None, 0)
        finally:
            try:
                queue.send(marker, False, OWNER_TYPE)  # put it back
            except Exception:
                pass
        if magic != _MAGIC + b"O":
            continue
        found.append({"key": key, "id": msqid, "creator_pid": pid, "orphaned": not _peer_alive(pid)})
    return found


def remove_orphans(dry_run: bool = False):
    """Remove ringipc queues whose creator is dead; return their keys."""
    removed = []
    for q in list_queues():
        if q["orphaned"]:
            if not dry_run:
                try:
                    _sysv_ipc().remove_message_queue(q["id"])
                except Exception:
                    continue
            removed.append(q["key"])
    return removed


register_scheme("sysvmq", connect, listen)
