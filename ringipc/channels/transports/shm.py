"""``shm://NAME``: channels whose bytes travel through shared-memory rings.

Rendezvous.  ``listen("shm://NAME")`` listens on the abstract UNIX socket
``@ringipc-shm-NAME`` with the ``unix://`` transport (so ``SO_PEERCRED``,
``authkey`` and ``handshake_timeout`` behave exactly as there).  For each
accepted peer the listener creates two anonymous rings, one per direction,
and sends their labels and then their descriptors (``SCM_RIGHTS``) over the
socket; the peer maps them and answers.  The rings never have a name, so
nothing is left in ``/dev/shm`` whichever side is killed, even during the
exchange.  (Where anonymous memory is missing the rings are named, and the
listener unlinks the names once the peer has answered.)

After the exchange the socket stays open and is the connection's lifeline:
the kernel closes it when a process dies, which is how each side learns of
the other's death (EOF, ``BrokenPipeError``), as in :mod:`ringipc.mp.connection`,
whose ``Connection`` moves the messages (including the side segments it uses
for messages larger than half a ring).

Readiness (message mode).  The socket also carries one *doorbell* byte per
message, written after the message is committed to the ring and consumed
after it is taken out.  The socket is therefore readable exactly while
messages wait (or the peer is gone), so ``fileno()`` works with
``selectors``, ``asyncio`` and ``multiprocessing.connection.wait``.  The
price is one small socket write per send and one read per receive; the
socket buffer is enlarged so that about ten thousand messages may wait
unread before a sender blocks on its doorbell.

``mode="stream"`` returns duplex :class:`ringipc.core.stream.RingStream` ends
(no doorbells: a stream end has no ``fileno``).
"""
from __future__ import annotations

import os
import pickle
import socket
from queue import Empty
from typing import Any, Callable, Final, List, NoReturn, Optional, Tuple, Union

from ...core import large
from ...core._ring import Ring, ring_from_descriptor
from ..address import check_mode, lookup, register_scheme
from ..channel import DEFAULT_MAX_MESSAGE_SIZE, BaseChannel, BaseListener, deadline_after, encode_object, remaining
from ...mp import oob
from ...mp.connection import PEER_CHECK, Connection, _Sweeper
from ...errors import AddressError, BufferTooShort, FrameError
from ...core.stream import RingStream

RENDEZVOUS_PREFIX = "@ringipc-shm-"
RING_KIND: Final = "mpmc"  # as connection.Pipe: a forked child may use an inherited end
# Per ring (two per connection).  Larger than Pipe's: messages up to 2 MiB stay
# in the ring instead of a side segment, which costs a segment per message.
DEFAULT_CAPACITY = 4 << 20
DOORBELL_BUFFER = 8 << 20
FIRST_SLICE = 0.001
_ACK = b"attached"
_FDS = b"R"  # the byte that carries the two ring descriptors


class _LifelineConnection(Connection):
    """A ring Connection whose socket may hold doorbell bytes: the peer's
    death is read from the hang-up flags, not from a peeked end-of-file."""

    def _peer_gone(self) -> bool:
        return bool(self._poller.poll(0))


class ShmChannel(BaseChannel):
    """A :class:`~ringipc.channels.channel.Channel` over two rings and a lifeline socket."""

    def __init__(self, sock: socket.socket, rx: Ring, tx: Ring, *,
                 max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        super().__init__(max_message_size)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, DOORBELL_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, DOORBELL_BUFFER)
        self._sock = sock
        self._conn = _LifelineConnection(sock, rx, tx)  # sends, large messages, lifetimes
        self._gone = self._conn._peer_gone
        self._owed = 0  # doorbells of messages already taken, not yet read off the socket

    @property
    def _rx(self) -> Ring:
        # Not a reference of our own: Connection pins its rings and drops
        # them at exit, before interpreter teardown, which ours would defeat.
        return self._conn._rx

    def __reduce__(self) -> NoReturn:
        raise TypeError("a shm:// channel cannot be pickled: connect to its address from the other process")

    def fileno(self) -> int:
        self._check_open()
        return self._sock.fileno()

    # The everyday calls skip BaseChannel's general argument handling; any
    # other call takes the general path, so behaviour is identical.
    def send_bytes(self, buf: Any, offset: int = 0, size: Optional[int] = None) -> None:
        if type(buf) is bytes and not offset and size is None and not self._closed:
            self._send_message(buf)  # type: ignore[arg-type]  # the Connection takes bytes as they are
        else:
            BaseChannel.send_bytes(self, buf, offset, size)

    def recv_bytes(self, maxlength: Optional[int] = None, timeout: Optional[float] = None) -> bytes:
        if maxlength is None and timeout is None and not self._closed:
            return bytes(self._recv_message(self._max_message_size, None))
        return BaseChannel.recv_bytes(self, maxlength, timeout)

    def send(self, obj: Any) -> None:
        # Small objects as plain pickles in the ring; large buffers out of
        # band through the Connection's object path, written once into a
        # slab (mp/oob.py, core/large.py).  Then the message's doorbell.
        self._check_open()
        data = encode_object(obj)
        if type(data) is bytes:
            self._send_message(data)  # type: ignore[arg-type]  # the Connection takes bytes as they are
        else:
            self._send_frame(data)  # type: ignore[arg-type]  # not bytes: a Frame

    def recv(self, timeout: Optional[float] = None) -> Any:
        # A large object is rebuilt straight from its slab or side segment:
        # one copy (oob.decode's, or pickle's), no message-sized bytes first.
        self._check_open()
        data = self._wait(self._rx.recv_bytes, deadline_after(timeout))
        self._taken()
        limit = self._limit()
        if data and not data[0]:
            if large.is_reference(data):
                def rebuild(view: memoryview) -> Any:
                    _check_limit(len(view), limit)
                    return oob.decode_payload(view)
                return large.load(data, rebuild)
            if oob.is_frame(data):
                _check_limit(len(data), limit)
                return oob.decode(data)
        _check_limit(len(data), limit)
        return pickle.loads(data)

    def _send_message(self, view: memoryview) -> None:
        self._conn.send_bytes(view)
        self._ring()

    def _send_frame(self, frame: oob.Frame) -> None:
        # What send() does after encoding, for a frame encoded elsewhere (AsyncChannel).
        self._conn._send_frame(frame)
        self._ring()

    def _ring(self) -> None:
        """The doorbell byte of a message just committed."""
        try:
            self._sock.send(b"\x01", socket.MSG_NOSIGNAL)
        except (BrokenPipeError, ConnectionResetError):
            # The message is committed; the peer may have taken it and gone
            # before its doorbell: the next send reports the broken pipe.
            pass

    def _settle(self) -> None:
        # Never blocks: a doorbell not yet written (the sender is between its
        # commit and its write) is read on a later call.
        try:
            got = self._sock.recv(self._owed, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._owed = 0
            return
        self._owed = self._owed - len(got) if got else 0

    def _taken(self) -> None:
        self._owed += 1
        self._settle()

    def _take(self, deadline: Optional[float]) -> bytes:
        data = self._wait(self._rx.recv_bytes, deadline)
        self._taken()
        if data and not data[0] and large.is_reference(data):
            return large.load_bytes(data)
        return data

    def _wait(self, take: Callable[[bool, Optional[float]], Any], deadline: Optional[float]) -> Any:
        """``take(block, timeout)`` until it returns, the peer is gone
        (EOFError once drained) or the deadline passes (TimeoutError).

        The slices start short and grow to PEER_CHECK: a peer that has just
        gone is seen at once, an idle channel looks at its socket rarely."""
        slice_ = FIRST_SLICE
        while True:
            left = remaining(deadline)
            try:
                return take(True, slice_ if left is None else min(slice_, left))
            except Empty:
                pass
            if self._gone():
                self._rx.recover()  # a claim the peer died holding
                try:
                    return take(False, None)  # what the peer sent before it went
                except Empty:
                    raise EOFError from None
            if deadline is not None and remaining(deadline) == 0:
                raise TimeoutError("no message before the timeout")
            slice_ = min(slice_ * 2, PEER_CHECK)

    def _recv_message(self, limit: Optional[int], deadline: Optional[float]) -> bytes:
        data = self._take(deadline)
        _check_limit(len(data), limit)
        return data

    def _recv_message_into(self, view: memoryview, limit: Optional[int], deadline: Optional[float]) -> "int | bytes":
        # Straight from the ring into ``view``: no message-sized bytes object
        # (for a 1 MiB message its allocation costs more than the copy).
        try:
            n = self._ring_into(view, deadline)
        except BufferTooShort as exc:
            self._taken()  # consumed all the same
            data = exc.args[0]
            data = large.load_bytes(data) if large.is_reference(data) else data
            _check_limit(len(data), limit)
            return bytes(data)  # BaseChannel raises BufferTooShort with it
        self._taken()
        if n and view[0] == 0 and large.is_reference(view[:n]):
            data = large.load_bytes(bytes(view[:n]))
            _check_limit(len(data), limit)
            if len(data) > len(view):
                return data
            view[: len(data)] = data
            return len(data)
        _check_limit(n, limit)
        return n

    def _ring_into(self, view: memoryview, deadline: Optional[float]) -> int:
        rx = self._rx
        return self._wait(lambda block, timeout: rx.recv_bytes_into(view, block, timeout), deadline)

    def _poll(self, deadline: Optional[float]) -> bool:
        if self._owed:
            self._settle()
        rx = self._rx
        slice_ = FIRST_SLICE
        while True:
            if rx.poll(0) or self._gone():
                return True
            left = remaining(deadline)
            if left == 0:
                return False
            if rx.poll(slice_ if left is None else min(slice_, left)):
                return True
            slice_ = min(slice_ * 2, PEER_CHECK)

    def _close(self) -> None:
        self._conn.close()  # closes the socket and drops the rings

    def __repr__(self) -> str:
        return f"<ShmChannel {'closed' if self._closed else repr(self._conn)}>"


def _check_limit(n: int, limit: Optional[int]) -> None:
    if limit is not None and n > limit:
        # The ring keeps boundaries: the refused message is gone, the
        # channel stays aligned and usable (as with unixpacket://).
        raise FrameError(f"{n}-byte message exceeds the {limit}-byte limit; it was discarded")


def _rendezvous(target: str) -> str:
    if not target or "/" in target:
        raise AddressError(f"shm:// names have no '/': {target!r} (use shm://NAME)")
    return RENDEZVOUS_PREFIX + target


def _wrap(sock: socket.socket, rx: Ring, tx: Ring, mode: str,
          max_message_size: Optional[int]) -> Union[RingStream, ShmChannel]:
    if mode == "stream":
        return RingStream(sock, rx, tx, picklable=False)  # the names are unlinked
    return ShmChannel(sock, rx, tx, max_message_size=max_message_size)


def _take_socket(ch: Any) -> socket.socket:
    """A socket of our own for the connection under the rendezvous channel ``ch``.

    Made blocking explicitly: a duplicate shares the file status flags, and
    a timeout set on another duplicate during the exchange leaves O_NONBLOCK
    on all of them, while a socket object made from a descriptor believes
    it blocks - its sends would then raise BlockingIOError on a full buffer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=os.dup(ch.raw_fileno()))
    sock.setblocking(True)
    return sock


class ShmListener(BaseListener):
    """Accepts peers on the rendezvous socket and gives each a pair of rings."""

    def __init__(self, target: str, inner: Any, mode: str, capacity: int, max_message_size: Optional[int]) -> None:
        super().__init__()
        self.address = f"shm://{target}"
        self._inner = inner
        self._mode = mode
        self._capacity = capacity
        self._max = max_message_size

    def fileno(self) -> int:
        self._check_open()
        return self._inner.fileno()

    def accept(self, timeout: Optional[float] = None) -> Union[RingStream, ShmChannel]:
        """Wait for one peer and hand it its rings; ``timeout`` bounds the whole exchange."""
        self._check_open()
        deadline = deadline_after(timeout)
        with self._inner.accept(timeout=remaining(deadline)) as ch:
            ch.stop_reading_ahead()  # the peer's first doorbell bytes may follow its answer
            rings: List[Ring] = []
            try:
                rings += [Ring(self._capacity, RING_KIND), Ring(self._capacity, RING_KIND)]
                to_peer, from_peer = rings
                sweeper = _Sweeper(to_peer, from_peer)
                ch.send_bytes(f"{to_peer.name}\n{from_peer.name}".encode())
                with _take_socket(ch) as raw:
                    try:
                        socket.send_fds(raw, [_FDS], [to_peer._descriptor(),  # type: ignore[attr-defined]  # private: not in the stub
                                                      from_peer._descriptor()])  # type: ignore[attr-defined]  # private: not in the stub
                    except (BrokenPipeError, ConnectionResetError):
                        raise ConnectionResetError("shm:// peer went away before attaching its rings") from None
                try:
                    ack = ch.recv_bytes(maxlength=64, timeout=remaining(deadline))
                except EOFError:
                    ack = None
                if ack != _ACK:
                    raise ConnectionResetError("shm:// peer went away before attaching its rings")
            finally:
                # Success or not, the names are done with: on failure the
                # caller may keep the exception (and these frames) for long.
                for ring in rings:
                    ring.unlink()
            end = _wrap(_take_socket(ch), from_peer, to_peer, self._mode, self._max)
        end._sweeper = sweeper  # type: ignore[union-attr]  # kept alive with the end, never read
        return end

    def _close(self) -> None:
        self._inner.close()


def _probe() -> None:
    """Raise SharedMemoryUnavailable now, at listen/connect time, where
    ``auto://`` and ``fallback=True`` can still choose another transport."""
    Ring(1 << 12, "spsc").close()


def listen(target: str, *, mode: str = "message", authkey: Optional[bytes] = None, max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE,
           capacity: int = DEFAULT_CAPACITY, backlog: int = 64,
           handshake_timeout: Optional[float] = None) -> ShmListener:
    check_mode(mode)
    address = _rendezvous(target)
    _probe()
    inner = lookup("unix").listen(address, backlog=backlog, authkey=authkey, max_message_size=4096,
                                  handshake_timeout=handshake_timeout)
    return ShmListener(target, inner, mode, capacity, max_message_size)


def connect(target: str, *, mode: str = "message", timeout: Optional[float] = None, authkey: Optional[bytes] = None,
            max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> Union[RingStream, ShmChannel]:
    check_mode(mode)
    address = _rendezvous(target)
    _probe()
    deadline = deadline_after(timeout)
    with lookup("unix").connect(address, timeout=timeout, authkey=authkey, max_message_size=4096) as ch:
        ch.stop_reading_ahead()  # the socket goes on to carry doorbell bytes
        try:
            names = ch.recv_bytes(timeout=remaining(deadline)).decode().split("\n")
        except EOFError:
            raise ConnectionResetError("shm:// listener closed before handing over its rings") from None
        if len(names) != 2:
            raise ConnectionResetError("shm:// listener sent a malformed ring offer")
        rx, tx = _receive_rings(ch, names, deadline)
        ch.send_bytes(_ACK)
        return _wrap(_take_socket(ch), rx, tx, mode, max_message_size)


def _receive_rings(ch: Any, labels: List[str], deadline: Optional[float]) -> List[Ring]:
    """The two rings whose descriptors follow the offer on ``ch``'s socket."""
    with _take_socket(ch) as raw:
        raw.settimeout(remaining(deadline))
        try:
            data, fds, flags, _ = socket.recv_fds(raw, 1, 2, getattr(socket, "MSG_CMSG_CLOEXEC", 0))
        except socket.timeout:
            raise TimeoutError("shm:// listener offered rings but sent no descriptors in time") from None
    rings = []
    try:
        if data != _FDS or len(fds) != 2 or flags & socket.MSG_CTRUNC:
            raise ConnectionResetError("shm:// listener sent a malformed ring offer")
        for fd, label in zip(list(fds), labels):
            fds.remove(fd)  # from here the ring owns it (and closes it if it fails)
            rings.append(ring_from_descriptor(fd, label))  # validates the header
    except BaseException:
        for fd in fds:
            os.close(fd)
        for ring in rings:
            ring.close()
        raise
    return rings


register_scheme("shm", connect, listen)
