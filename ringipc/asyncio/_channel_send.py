"""Sending on a channel without blocking the loop (``AsyncChannel.send``).

A send first tries the transport without blocking; what the kernel did not
take waits in a queue of frames that a writer callback (``add_writer`` on
the transport's own descriptor, registered only while the queue is not
empty) writes on as room comes.  Frames go out whole and in order:

* Streams (pipe, fifo, unix, tcp): header and payload are written with
  ``pwritev(..., RWF_NOWAIT)``, which takes what fits and never blocks,
  without making the descriptor non-blocking for its synchronous users.
* Packets and datagrams (unixpacket, unixgram, udp): one non-blocking
  ``sendmsg``/``send`` that takes the whole packet or nothing.
* POSIX message queues (mq): one ``mq_send`` on the channel's descriptor,
  which is non-blocking already (the synchronous side waits in ``poll``):
  it takes the whole message or nothing; a message queue descriptor is
  pollable, so the loop watches it for room.
* Shared-memory rings (shm): the ring's space bell, not a descriptor
  (ringipc/asyncio/_shm_send.py; this class hands those sends over).
* A kernel without RWF_NOWAIT on pipes: the synchronous send.

Cancellation (the send raises CancelledError): a frame of which nothing was
written yet is withdrawn (the message is not sent).  One that is partly
written cannot be taken back - the peer would misread whatever followed -
so the loop finishes it in the background and the message is sent.  If writing fails part-way
the channel is closed, so the peer sees ConnectionResetError, never a torn
frame (the synchronous rule).  Sends through ``.sync`` while asynchronous
ones are queued would interleave: use one or the other for sending.
"""
from __future__ import annotations

import asyncio
import collections
import errno
import os
import socket
from typing import Any, Callable, Deque, List, Optional

from ..channels.framing import HEADER as _STREAM_HEADER, IOV_MAX
from ..channels.transports import mq as _mq, packet as _packet, shm as _shm, udp as _udp
from ..channels.transports.stream import StreamChannel
from ..errors import ChannelClosed, MessageTooLarge
from ..mp.oob import Frame
from ._shm_send import ShmSender

__all__ = ["Sender"]

_NOWAIT = getattr(os, "RWF_NOWAIT", 0)
_DONTWAIT = int(socket.MSG_DONTWAIT) | int(socket.MSG_NOSIGNAL)


def _size(message: "memoryview | Frame") -> int:
    return message.size if type(message) is Frame else len(message)


class _Frame:
    __slots__ = ("bufs", "message", "started", "waiter", "abandoned")

    def __init__(self, bufs: List[memoryview], message: "memoryview | Frame") -> None:
        self.bufs = bufs        # what is left to write
        self.message = message  # what the channel itself would send (for its error handling)
        self.started = False    # some of it is on the wire
        self.waiter: Optional["asyncio.Future[None]"] = None
        self.abandoned = False  # its sender was cancelled after it started


class Sender:
    """The sending side of one AsyncChannel."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self._queue: Deque[_Frame] = collections.deque()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._fd = -1
        self._write: Optional[Callable[[_Frame], bool]] = None
        self._shm: Optional[ShmSender] = None
        if isinstance(channel, _shm.ShmChannel):
            self._shm = ShmSender(channel)
        elif isinstance(channel, StreamChannel) and channel._wfd is not None and _NOWAIT:
            self._fd, self._write = channel._wfd, self._write_stream
        elif isinstance(channel, _packet.PacketChannel):
            self._fd, self._write = channel._sock.fileno(), self._write_packet
        elif isinstance(channel, _udp.UdpChannel):
            self._fd, self._write = channel._sock.fileno(), self._write_datagram
        elif isinstance(channel, _mq.MqChannel):
            self._fd, self._write = channel._sfd, self._write_mq

    # -- frames per transport -------------------------------------------------------------
    def _frame(self, message: "memoryview | Frame") -> _Frame:
        # An out-of-band Frame (mp/oob.py) goes out as its pieces, the
        # object's buffers uncopied; a datagram must be joined to be signed.
        ch = self._channel
        parts = message.pieces() if type(message) is Frame else [message]
        if self._write == self._write_stream:
            return _Frame([memoryview(_STREAM_HEADER.pack(_size(message))), *parts], message)
        if self._write == self._write_mq:
            # A message queue cannot gather: a frame is joined, as its synchronous send does.
            return _Frame([memoryview(message.tobytes()) if type(message) is Frame else message], message)
        if self._write == self._write_datagram:
            # Built once: its sequence number is taken, and a retry must resend it as it is.
            whole = message.tobytes() if type(message) is Frame else message
            return _Frame([memoryview(ch._datagram(_udp._DATA, whole))], message)
        return _Frame([memoryview(_packet.HEADER), *parts], message)

    def _write_stream(self, frame: _Frame) -> bool:
        """Write what fits; True once the frame is all out."""
        n = os.pwritev(self._fd, frame.bufs[:IOV_MAX], -1, _NOWAIT)  # BlockingIOError: nothing fits
        if n:
            frame.started = True
        bufs = frame.bufs
        while n:
            if n >= len(bufs[0]):
                n -= len(bufs.pop(0))
            else:
                bufs[0] = bufs[0][n:]
                n = 0
        return not bufs

    def _write_packet(self, frame: _Frame) -> bool:
        try:
            self._channel._sock.sendmsg(frame.bufs, [], _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            raise BlockingIOError from None
        except OSError as exc:
            # Not "no room": the transport's own handling (a bigger send
            # buffer for a large packet, or the error it raises).
            self._channel._send_error(frame.message, exc)
        return True

    def _write_datagram(self, frame: _Frame) -> bool:
        try:
            self._channel._sock.send(frame.bufs[0], _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            raise BlockingIOError from None
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                raise MessageTooLarge(f"{len(frame.bufs[0])}-byte datagram refused by the kernel") from exc
            if exc.errno in (errno.ECONNREFUSED, errno.ENOTCONN):
                raise BrokenPipeError(errno.EPIPE, "the peer's socket is gone (port unreachable)") from exc
            raise
        return True

    def _write_mq(self, frame: _Frame) -> bool:
        ch = self._channel
        try:
            ch._send(frame.bufs[0])  # the descriptor is non-blocking: whole message or nothing
        except ch._busy:
            raise BlockingIOError from None
        except ch._gone:
            ch._check_open()
            raise
        return True

    # -- the queue ------------------------------------------------------------------------
    async def send(self, view: "memoryview | Frame") -> None:
        if self._shm is not None:
            return await self._shm.send(view)
        write = self._write
        if write is None:
            self._channel._send_any(view)  # no descriptor that says "room": see above
            return
        frame = self._frame(view)
        if not self._queue:
            try:
                if write(frame):
                    return
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL) and not frame.started:
                    self._write = None  # no RWF_NOWAIT for this descriptor: synchronous from now on
                    self._channel._send_any(view)
                    return
                raise self._failed(frame, exc)
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            loop.add_writer(self._fd, self._writable)
        elif self._loop is not loop:
            raise RuntimeError("this channel is being sent on in another event loop")
        waiter = frame.waiter = loop.create_future()
        self._queue.append(frame)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                if frame.started:
                    frame.abandoned = True  # the loop finishes it: see above
                else:
                    try:
                        self._queue.remove(frame)
                    except ValueError:
                        pass  # _writable withdrew it already
                    if not self._queue:
                        self._unregister()
            raise

    def _writable(self) -> None:
        if self._channel.closed:  # by its owner: the descriptor may be another's by now
            self._fail_all(ChannelClosed("channel closed while a send waited"))
            return
        while self._queue:
            frame = self._queue[0]
            if not frame.started and frame.waiter is not None and frame.waiter.cancelled():
                # Cancelled before any of it went, its task not yet resumed:
                # withdrawn here, or the message would go out after all.
                self._queue.popleft()
                continue
            try:
                if not self._write(frame):  # type: ignore[misc]  # set while frames queue
                    return
            except BlockingIOError:
                return
            except BaseException as exc:
                self._fail_all(self._failed(frame, exc))
                return
            self._queue.popleft()
            if frame.waiter is not None and not frame.waiter.done():
                frame.waiter.set_result(None)
        self._unregister()

    def _failed(self, frame: _Frame, exc: BaseException) -> BaseException:
        if frame.started:
            # Part of a frame is out: whatever followed would be misread.
            self._channel.close()
        return exc

    def _fail_all(self, exc: BaseException) -> None:
        frames, self._queue = self._queue, collections.deque()
        self._unregister()
        for frame in frames:
            if frame.waiter is not None and not frame.waiter.done():
                frame.waiter.set_exception(exc)
                frame.waiter.exception()  # a cancelled sender will not look: no "never retrieved" noise

    def _unregister(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_writer(self._fd)

    def close(self, exc: BaseException) -> None:
        """The channel is closing: queued sends fail with `exc`."""
        if self._shm is not None:
            self._shm.close(exc)
        if self._queue:
            self._fail_all(exc)
        self._unregister()
