"""Message channel over a UNIX ``SOCK_SEQPACKET`` socket: the kernel keeps the
boundaries, so no length framing is needed.

Each packet starts with a 16-byte header: a tag byte (1, data) and 15 zero
bytes.  A header at all, because a zero-length packet and end-of-file both
read as 0 bytes and must be told apart; 16 bytes, because the kernel copies
a payload whose offset in the packet is not a multiple of 16 several times
slower (measured: a 1 MiB message at 3k/s behind a 1- or 8-byte header,
22k/s behind a 16-byte one).  A packet whose header is anything else is
refused and closes the channel.  The largest message is bounded by the
socket send buffer (``net.core.wmem_max``).

A message is received with one system call into a buffer one byte longer
than the header plus the receive limit: a packet that fills it is over the
limit, and the kernel has already dropped the rest of it, so it is refused
without ever being held whole.

The everyday calls (``send_bytes`` of a whole ``bytes``; ``recv_bytes`` with
no ``maxlength`` and no timeout) run in C, in the base class
:class:`ringipc.channels.transports._packet_fast.PacketFastPath`; it hands everything else to the
general path here (``BaseChannel``'s methods and the primitives below)."""
from __future__ import annotations

import errno
import mmap
import os
import socket
import sys
from typing import Any, Callable, List, Optional, cast

from ._packet_fast import PacketFastPath
from ..channel import DEFAULT_MAX_MESSAGE_SIZE, BaseChannel
from ...errors import FrameError, MessageTooLarge
from ..framing import IOV_MAX, wait_readable
from ...mp.oob import Frame

HEADER = b"\x01" + bytes(15)  # must match DATA_HEADER in _packet_fast.pyx
HEADER_SIZE = len(HEADER)
# Linux then reports a truncated packet's real length, for the error message;
# the spare byte, not this flag, is what detects the truncation.
_REAL_LENGTH = int(socket.MSG_TRUNC) if sys.platform.startswith("linux") else 0
# Up to here, copying the header and message into one buffer for send() costs
# less than sendmsg() building a two-part vector (measured: even at 8 KiB).
_JOIN_MAX = 4096
# Kernel bookkeeping taken out of the send buffer for one packet; a safe margin.
_SKB_OVERHEAD = 4096
# The send buffer asked for when a message needs it (the kernel caps it at
# net.core.wmem_max); half of what it grants bounds the largest message.
FULL_SNDBUF = 4 << 20
# The send buffer used until then.  A deep one lets a sender run far ahead,
# so a receiver that reads each message finds it long gone from the cache
# (measured: 64 KiB messages 20% slower with 4 MiB than with 256 KiB).
WORKING_SNDBUF = 256 << 10


def tune_packet_socket(sock: socket.socket) -> None:
    """Ask for the largest send buffer the system allows (capped by net.core.wmem_max)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, FULL_SNDBUF)
    except OSError:
        pass


class PacketChannel(PacketFastPath, BaseChannel):
    _unit = "packet"  # what the kernel carries one message in, for error messages

    def __init__(self, sock: socket.socket, *, max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._sock = sock
        tune_packet_socket(sock)
        # Linux reports the doubled value it reserved; half of it is payload room.
        sndbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        self.transport_limit = max(0, sndbuf // 2 - _SKB_OVERHEAD)
        # Work with a smaller buffer until a message needs the full one
        # (_use_full_send_buffer); the limit above is what the full one allows.
        self._send_buffer_full = sndbuf <= 2 * WORKING_SNDBUF
        if not self._send_buffer_full:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, WORKING_SNDBUF)
        self._header = bytearray(HEADER_SIZE)
        # Reused for every receive (a channel has one reader at a time).  An
        # anonymous map: the limit can be megabytes (net.core.wmem_max), and
        # a map costs only the pages messages reach, where a bytearray is
        # zeroed whole.  Private, so a forked copy of the channel gets its own.
        self._scratch_map: Optional[mmap.mmap] = None
        self._scratch_size = 0
        # Sized for the largest packet there can be (the limit never exceeds
        # transport_limit), plus the spare byte, so it is never replaced: a C
        # receive waiting with the GIL released may be writing into it (see
        # _fast_receive_into).
        self._scratch(HEADER_SIZE + self.transport_limit + 1)
        super().__init__(max_message_size)  # sets max_message_size, which arms fast receives
        self._fast_setup(sock.fileno(), self.transport_limit)

    def _limit_changed(self) -> None:
        limit = cast(int, self._limit())  # never None: capped by transport_limit
        self._fast_receive_into(self._scratch(HEADER_SIZE + limit + 1), limit)

    def _send_failed(self, payload: bytes, err: int) -> None:
        """A send the C fast path could not make: made again with the full
        send buffer if the working one was too small for it, else raised."""
        self._send_error(memoryview(payload), OSError(err, os.strerror(err)))

    def _send_error(self, message: "memoryview | Frame", exc: OSError) -> None:
        if exc.errno == errno.EMSGSIZE and self._use_full_send_buffer():
            self._send_any(message)  # nothing was sent: the kernel refused it whole
            return
        self._raise_send_error(exc, message.size if type(message) is Frame else len(message))

    def _raise_send_error(self, exc: OSError, size: int) -> None:
        """Raise for a failed send: MessageTooLarge when the kernel refused the
        packet's size, else the error itself."""
        if exc.errno in (errno.EMSGSIZE, errno.ENOBUFS):
            raise MessageTooLarge(f"{size}-byte {self._unit} refused by the kernel: {exc.strerror}") from exc
        raise exc

    def _use_full_send_buffer(self) -> bool:
        """Switch to the full send buffer; False if it is in use already."""
        if self._send_buffer_full:
            return False
        self._send_buffer_full = True
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, FULL_SNDBUF)
        return True

    def fileno(self) -> int:
        self._check_open()
        return self._sock.fileno()

    def _send_message(self, view: memoryview) -> None:
        try:
            if len(view) <= _JOIN_MAX:
                self._sock.send(HEADER + view)
            else:
                self._sock.sendmsg([HEADER, view])
        except OSError as exc:
            self._send_error(view, exc)

    def _send_frame(self, frame: Frame) -> None:
        # Gathered: header and the object's own buffers in one sendmsg, one
        # packet, never joined first (unless it has more pieces than a
        # sendmsg takes).
        pieces = frame.pieces()
        if len(pieces) >= IOV_MAX:
            BaseChannel._send_frame(self, frame)
            return
        try:
            self._sock.sendmsg([HEADER, *pieces])
        except OSError as exc:
            self._send_error(frame, exc)

    def _scratch(self, size: int) -> mmap.mmap:
        if self._scratch_size < size:
            self._scratch_map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
            self._scratch_size = size
        return self._scratch_map  # type: ignore[return-value]  # set above (size > 0), no cast() per message

    def _check(self, n: int, header_ok: bool, limit: int) -> None:
        """Raise for anything but a whole data packet of at most ``limit`` bytes
        (``n`` counts the header)."""
        if n == 0:
            raise EOFError("the peer closed the channel")
        self._refuse(n, header_ok, limit)

    def _refuse(self, n: int, header_ok: bool, limit: int) -> None:
        if not header_ok or n < HEADER_SIZE:
            self.close()
            raise FrameError(f"a {self._unit} without ringipc's header arrived (foreign or truncated); channel closed")
        if n - HEADER_SIZE > limit:
            what = f"{n - HEADER_SIZE}-byte message" if _REAL_LENGTH else "message"
            raise FrameError(f"a {what} is over the {limit}-byte limit; it was discarded")

    # ``limit`` is never None here: a packet channel's limit is at most its transport's.
    def _recv_message(self, limit: int, deadline: Optional[float]) -> bytes:  # type: ignore[override]  # see above
        room = HEADER_SIZE + limit  # the longest packet accepted; one more byte shows a longer one
        scratch = self._scratch(room + 1)
        recv_into = self._sock.recv_into
        n = self._receiving(deadline, lambda flags: recv_into(scratch, room + 1, _REAL_LENGTH | flags))
        header_ok = scratch[:HEADER_SIZE] == HEADER
        if n < HEADER_SIZE or n > room or not header_ok:
            self._check(n, header_ok, limit)
        return scratch[HEADER_SIZE:n]

    def _recv_message_into(self, view: memoryview, limit: int,  # type: ignore[override]  # see above
                           deadline: Optional[float]) -> "int | bytes":
        # A message that fits lands in the caller's buffer directly; a longer
        # one continues into the scratch buffer and is put back together.
        cap = limit + 1  # payload bytes to offer: one more than the limit shows a longer one
        parts: List[Any]
        spill: Any
        if len(view) >= cap:
            parts = [self._header, view[:cap]]
            spill = None
        else:
            spill = memoryview(self._scratch(cap - len(view)))[: cap - len(view)]
            parts = [self._header, view, spill]
        recvmsg_into = self._sock.recvmsg_into
        n = self._receiving(deadline, lambda flags: recvmsg_into(parts, 0, _REAL_LENGTH | flags)[0])
        header_ok = self._header == HEADER
        if n < HEADER_SIZE or n > HEADER_SIZE + limit or not header_ok:
            self._check(n, header_ok, limit)
        length = n - HEADER_SIZE
        if length <= len(view):
            return length
        return b"".join((view, spill[: length - len(view)]))

    def _receiving(self, deadline: Optional[float], receive: Callable[..., int]) -> int:
        """``receive(flags)`` once a packet is ready (flags 0: a blocking
        receive); TimeoutError at ``deadline``."""
        if deadline is not None and not wait_readable(self._sock.fileno(), deadline):
            raise TimeoutError("timed out waiting for the peer")
        return receive(0)

    def _poll(self, deadline: Optional[float]) -> bool:
        return wait_readable(self._sock.fileno(), deadline)

    def _close(self) -> None:
        self._fast_off()
        self._sock.close()
