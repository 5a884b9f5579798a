"""Kernel byte streams with length framing: os.pipe, UNIX stream sockets, TCP loopback.

Each message goes out in one write: concatenated with its length when small
(cheaper than building an iovec list), vectored when large (no copy); the
reader pulls 64 KiB at a time and cuts frames out of it.  These are the
reference "best hand-written use" of each facility that ringipc's own
transports are measured against.
"""
import mmap
import os
import socket
import tempfile
from typing import Any, Callable, List, Tuple

from ringipc.bench.adapters.base import BATCH_SCENARIOS, Channel, Facility
from ringipc.bench.adapters.framing import LARGE, FdEnd, FrameReader, frame_sender, frames, write_all


class _Framed(Facility):
    copies_on_send = True

    def _pair(self, size: int) -> Any:
        """Return (reader end, writer end, close)."""
        raise NotImplementedError

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        r, w, close = self._pair(size)
        return Channel([w], [r], close)


class OsPipe(_Framed):
    name = "os.pipe"

    def _pair(self, size: int) -> Any:
        r, w = os.pipe()

        def close() -> None:
            os.close(r)
            os.close(w)

        return FdEnd(r), FdEnd(w), close

    def open_sender(self, end: Any, size: int) -> Callable[[Any], Any]:
        fd = end.fd
        return frame_sender(lambda data: os.write(fd, data), lambda parts: os.writev(fd, parts))

    def open_receiver(self, end: Any, size: int) -> Callable[[], Any]:
        fd = end.fd
        return FrameReader(lambda view: os.readv(fd, [view])).recv


class NamedPipe(OsPipe):
    """A FIFO made with mkfifo: a pipe whose every write also updates the
    inode's times, which costs a little more than an anonymous pipe."""

    name = "mkfifo"

    def _pair(self, size: int) -> Any:
        path = os.path.join(tempfile.mkdtemp(prefix="ringipc-bench-"), "fifo")
        os.mkfifo(path, 0o600)
        try:
            r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            w = os.open(path, os.O_WRONLY)
        finally:
            os.unlink(path)
            os.rmdir(os.path.dirname(path))
        os.set_blocking(r, True)

        def close() -> None:
            os.close(r)
            os.close(w)

        return FdEnd(r), FdEnd(w), close


class _SocketStream(_Framed):
    def _connected(self) -> Tuple[Any, Any]:
        raise NotImplementedError

    def _pair(self, size: int) -> Any:
        a, b = self._connected()
        for s in (a, b):
            # Deep buffers so a 1 MiB message is not chopped into many syscalls.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)

        def close() -> None:
            a.close()
            b.close()

        return a, b, close

    def open_sender(self, end: Any, size: int) -> Callable[[Any], Any]:
        return frame_sender(end.send, end.sendmsg)

    def open_receiver(self, end: Any, size: int) -> Callable[[], Any]:
        return FrameReader(end.recv_into).recv


class UnixStream(_SocketStream):
    name = "unix-stream"

    def _connected(self) -> Tuple[socket.socket, socket.socket]:
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


class UnixStreamBatch(UnixStream):
    """The same socket, but a whole batch of frames per sendmsg."""

    name = "unix-stream-batch"
    batched = True
    scenarios = BATCH_SCENARIOS

    def batch_messages(self, size: int) -> int:
        # sendmsg takes at most IOV_MAX (1024) buffers: two per message.
        return min(super().batch_messages(size), 500)

    def open_batch_sender(self, end: Any, size: int) -> Callable[[List[Any]], Any]:
        return lambda msgs: write_all(end.sendmsg, frames(msgs))


class TcpLoopback(_SocketStream):
    name = "tcp-loopback"

    def _connected(self) -> Tuple[Any, Any]:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, server


_SNDBUF_SLACK = 64 << 10


def packet_receiver(end: Any, size: int) -> Callable[[], Any]:
    """A receive of one packet (datagram or seqpacket) from socket `end`."""
    if size < LARGE:
        # A message of any size up to the largest packet the sender's
        # buffer allows, as a general channel must take them, returned as
        # fresh bytes (a reused buffer would be checked inside the timed
        # loop): one recv_into a scratch map that size, then a slice of
        # the map, which is one copy.
        room = _SNDBUF_SLACK + 2 * size
        scratch = mmap.mmap(-1, room, flags=mmap.MAP_PRIVATE)
        recv_into = end.recv_into

        def recv_small() -> Any:
            return scratch[: recv_into(scratch, room)]

        return recv_small
    buf = bytearray(size)
    bufs = [buf]

    def recv() -> Any:
        got, _, flags, _ = end.recvmsg_into(bufs)
        if flags & socket.MSG_TRUNC or got != size:
            return bytes(got)  # the wrong length fails verification
        return buf

    return recv




class UnixSeqpacket(Facility):
    """Message boundaries kept by the kernel: one send, one recv per message."""

    name = "unix-seqpacket"
    copies_on_send = True
    mpmc = True

    def supports(self, size: int, producers: int = 1, consumers: int = 1) -> Tuple[bool, str]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF_SLACK + 2 * size)
            a.setblocking(False)
            a.send(bytes(size))
        except OSError as exc:
            return False, f"{size} B does not fit one datagram ({exc.strerror})"
        finally:
            a.close()
            b.close()
        return super().supports(size, producers, consumers)

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF_SLACK + 2 * size)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SNDBUF_SLACK + 2 * size)

        def close() -> None:
            a.close()
            b.close()

        return Channel([a] * producers, [b] * consumers, close)

    def open_sender(self, end: Any, size: int) -> Callable[[Any], Any]:
        return end.send

    def open_receiver(self, end: Any, size: int) -> Callable[[], Any]:
        return packet_receiver(end, size)


FACILITIES = [OsPipe(), NamedPipe(), UnixStream(), UnixStreamBatch(), UnixSeqpacket(), TcpLoopback()]
