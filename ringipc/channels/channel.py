"""The one ``Channel`` protocol every transport implements, and the base class
that writes object pickling, argument checking and closed-state handling once.

A transport subclasses :class:`BaseChannel` and supplies four primitives:
``_send_message(view)``, ``_recv_message(limit, deadline)``,
``_recv_message_into(view, limit, deadline)`` and ``_poll(deadline)``.
Everything a user calls is written here, so behaviour (pickle protocol,
``BufferTooShort``, ``ValueError`` on a closed handle, timeout meaning) cannot
drift between transports.
"""
from __future__ import annotations

import pickle
import time
from typing import Any, Optional, Protocol, TypeVar, runtime_checkable

from ..errors import BufferTooShort, ChannelClosed, FrameError, MessageTooLarge
from ..mp import oob
from ..mp.oob import Frame

_Self = TypeVar("_Self", bound="_Closable")
_dumps = pickle.dumps
_PROTOCOL = pickle.HIGHEST_PROTOCOL
# Types that cannot hold a buffer (no buffer_callback needed), and common
# ones that are surely not NumPy arrays (no type-name test needed).
_SCALARS = frozenset({str, int, float, bool, type(None), complex})
_CONTAINERS = frozenset({dict, list, tuple, set, frozenset})
_OOB_MIN = oob.OOB_MIN_BUFFER

#: Default cap on one received message.  A header announcing more is refused
#: before anything is allocated, so a hostile or corrupt peer cannot make us
#: reserve memory; raise it (or pass ``None``) for bigger messages.
DEFAULT_MAX_MESSAGE_SIZE = 1 << 30


@runtime_checkable
class Channel(Protocol):
    """A bidirectional message channel (``multiprocessing.connection.Connection``-like)."""

    def send(self, obj: Any) -> None: ...
    def recv(self, timeout: Optional[float] = None) -> Any: ...
    def send_bytes(self, buf: Any, offset: int = 0, size: Optional[int] = None) -> None: ...
    def recv_bytes(self, maxlength: Optional[int] = None, timeout: Optional[float] = None) -> bytes: ...
    def recv_bytes_into(self, buf: Any, offset: int = 0, timeout: Optional[float] = None) -> int: ...
    def poll(self, timeout: Optional[float] = 0.0) -> bool: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> "Channel": ...
    def __exit__(self, *exc: Any) -> None: ...


@runtime_checkable
class Listener(Protocol):
    """Accepts incoming channels on one address."""

    address: str

    def accept(self, timeout: Optional[float] = None) -> Any: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Listener": ...
    def __exit__(self, *exc: Any) -> None: ...


def deadline_after(timeout: Optional[float]) -> Optional[float]:
    """Turn a relative timeout into an absolute monotonic deadline (``None`` = forever).

    The monotonic clock is used so that a wall-clock step (NTP, suspend) can
    neither shorten nor stretch a wait."""
    if timeout is None:
        return None
    if timeout < 0:
        timeout = 0.0
    return time.monotonic() + timeout


def over_limit(size: int, limit: Optional[int]) -> FrameError:
    """The error for a received message of ``size`` bytes over the receive limit
    (transports whose messages arrive whole: it has been discarded)."""
    return FrameError(f"a {size}-byte message is over the {limit}-byte limit; it was discarded")


def within_limit(body: bytes, limit: Optional[int]) -> bytes:
    """``body``, or :func:`over_limit` raised if it is longer than ``limit``."""
    if limit is not None and len(body) > limit:
        raise over_limit(len(body), limit)
    return body


class _LargeBuffer(Exception):
    """Raised out of pickle.dumps by _in_band: the object has a buffer to send out of band."""


def _in_band(pb: pickle.PickleBuffer) -> bool:
    # A module-level buffer_callback: building one per call (a closure and
    # its list) costs as much as pickling a small object.
    try:
        raw = pb.raw()
    except BufferError:
        return True  # not contiguous: in-band, as oob.encode does
    if raw.nbytes < oob.OOB_MIN_BUFFER:
        return True
    raise _LargeBuffer


def encode_object(obj: Any) -> "bytes | Frame":
    """What ``send(obj)`` sends: ``pickle.dumps(obj)`` (protocol 5, the same
    bytes as always), or oob.encode's Frame when the object has a buffer of
    ``oob.OOB_MIN_BUFFER`` bytes or more.  Small objects do not take
    oob.encode's reusable pickler: its bookkeeping costs more than a fresh
    C pickler for them (measured 2.7 against 1.3 us for a small dict)."""
    kind = type(obj)
    if kind in _SCALARS:
        return _dumps(obj, _PROTOCOL)
    if kind is bytes or kind is bytearray:  # pickled in-band whatever the callback: see oob.py
        return _dumps(obj, _PROTOCOL) if len(obj) < _OOB_MIN else oob.encode(obj)
    if kind not in _CONTAINERS and kind.__name__ == "ndarray" and kind.__module__ == "numpy":
        return oob.encode(obj)  # a plain array's short frame (oob._array_frame)
    try:
        return _dumps(obj, _PROTOCOL, buffer_callback=_in_band)
    except _LargeBuffer:
        return oob.encode(obj)  # pickled again, its large buffers out of band


def load_message(data: Any) -> Any:
    """The object of a received message: a pickle, or an out-of-band frame
    (oob.py; it starts with NUL, which no pickle does).  A frame received
    into a writable buffer of the channel's own is rebuilt in place: its
    arrays look into that buffer (writable, as multiprocessing's are), no
    second copy; a bytes object cannot share memory and is copied out once."""
    if type(data) is bytes:
        if data and not data[0] and oob.is_frame(data):
            return oob.decode(data)
        return pickle.loads(data)
    view = memoryview(data)
    if oob.is_frame(view):
        return oob.decode_owned(view)
    return pickle.loads(view)


def remaining(deadline: Optional[float]) -> Optional[float]:
    """Seconds left until ``deadline``: ``None`` for no deadline, never negative."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


class _Closable:
    """Idempotent close, context manager and close-on-collect, for channels and listeners."""

    _closed = False

    def _close(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # Nothing may escape a finalizer; a half-built object may lack its fd.
        try:
            self.close()
        except Exception:
            pass


class BaseChannel(_Closable):
    """Shared behaviour of every channel; subclasses provide the transport primitives."""

    #: Largest message this transport can carry at all (``None``: no transport limit).
    transport_limit: Optional[int] = None

    def __init__(self, max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._closed = False
        self.max_message_size = max_message_size

    @property
    def max_message_size(self) -> Optional[int]:
        """The largest message this end accepts (``None``: only the transport's limit)."""
        return self._max_message_size

    @max_message_size.setter
    def max_message_size(self, value: Optional[int]) -> None:
        self._max_message_size = value
        self._limit_changed()

    def _limit_changed(self) -> None:
        """Called when ``max_message_size`` is set: a transport that keeps its
        receive limit ready (for a fast path) recomputes it here."""

    # --- primitives a transport provides --------------------------------------------------
    def _send_message(self, view: memoryview) -> None:
        raise NotImplementedError

    def _recv_message(self, limit: Optional[int], deadline: Optional[float]) -> "bytes | bytearray":
        raise NotImplementedError

    def _recv_message_into(self, view: memoryview, limit: Optional[int],
                           deadline: Optional[float]) -> "int | bytes":
        """Receive one message into ``view`` if it fits and return its length;
        if it does not fit, return the whole message as ``bytes`` instead."""
        data = self._recv_message(limit, deadline)
        if len(data) > len(view):
            return bytes(data)
        view[: len(data)] = data
        return len(data)

    def _poll(self, deadline: Optional[float]) -> bool:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    # --- the public API, written once --------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ChannelClosed("operation on a closed channel")

    def _limit(self, maxlength: Optional[int] = None) -> Optional[int]:
        limit = self._max_message_size
        for n in (maxlength, self.transport_limit):
            if n is not None and (limit is None or n < limit):
                limit = n
        return limit

    def send_bytes(self, buf: Any, offset: int = 0, size: Optional[int] = None) -> None:
        self._send_message(self._outgoing(buf, offset, size))

    def _outgoing(self, buf: Any, offset: int, size: Optional[int]) -> memoryview:
        """The bytes send_bytes(buf, offset, size) sends, checked (open channel, range, transport limit)."""
        self._check_open()
        view = memoryview(buf).cast("B")
        if offset < 0 or offset > len(view):
            raise ValueError("offset is out of range")
        if size is None:
            size = len(view) - offset
        if size < 0 or offset + size > len(view):
            raise ValueError("size is out of range")
        view = view[offset : offset + size]
        if self.transport_limit is not None and len(view) > self.transport_limit:
            raise MessageTooLarge(
                f"{len(view)}-byte message exceeds this transport's {self.transport_limit}-byte limit"
            )
        return view

    def recv_bytes(self, maxlength: Optional[int] = None, timeout: Optional[float] = None) -> bytes:
        self._check_open()
        if maxlength is not None and maxlength < 0:
            raise ValueError("negative maxlength")
        return bytes(self._recv_message(self._limit(maxlength), deadline_after(timeout)))

    def recv_bytes_into(self, buf: Any, offset: int = 0, timeout: Optional[float] = None) -> int:
        """Receive one message into ``buf`` at ``offset``; return its length.

        If it does not fit, :class:`~ringipc.errors.BufferTooShort` (a
        ``multiprocessing.BufferTooShort``) is raised with
        the whole message as ``args[0]``, as ``multiprocessing`` does."""
        self._check_open()
        view = memoryview(buf).cast("B")
        if view.readonly:
            # Refused before receiving: after, the message would be lost.
            raise TypeError(f"recv_bytes_into needs a writable buffer, not {type(buf).__name__}")
        if offset < 0 or offset > len(view):
            raise ValueError("offset is out of range")
        got = self._recv_message_into(view[offset:], self._limit(), deadline_after(timeout))
        if isinstance(got, int):
            return got
        raise BufferTooShort(got)

    def send(self, obj: Any) -> None:
        # Small objects: plain pickle bytes, the send_bytes path as before;
        # large buffers go out of band, as a frame (oob.py).
        self._check_open()
        # encode_object, its everyday cases written out: a call is a visible
        # part of a small message's cost.
        kind = type(obj)
        if kind in _SCALARS or (kind is bytes and len(obj) < _OOB_MIN):
            self.send_bytes(_dumps(obj, _PROTOCOL))
            return
        if kind in _CONTAINERS:
            try:
                self.send_bytes(_dumps(obj, _PROTOCOL, buffer_callback=_in_band))
                return
            except _LargeBuffer:
                data = oob.encode(obj)
        else:
            data = encode_object(obj)
        if type(data) is bytes:
            self.send_bytes(data)
        else:
            self._send_frame(self._checked_frame(data))  # type: ignore[arg-type]  # not bytes: a Frame

    def _checked_frame(self, frame: Frame) -> Frame:
        """``frame``, or MessageTooLarge if this transport cannot carry it
        (checked before anything is copied or sent)."""
        if self.transport_limit is not None and frame.size > self.transport_limit:
            raise MessageTooLarge(
                f"{frame.size}-byte message exceeds this transport's {self.transport_limit}-byte limit"
            )
        return frame

    def _send_frame(self, frame: Frame) -> None:
        """Send an out-of-band frame as one message.  This default joins it
        once into one buffer, for transports that cannot gather (message
        queues, signed datagrams); streams and packets override it."""
        out = bytearray(frame.size)
        frame.write_into(memoryview(out))
        self._send_message(memoryview(out))

    def _send_any(self, message: "memoryview | Frame") -> None:
        """Send what ``_outgoing`` or ``oob.encode`` prepared (a retry after a
        transport's recoverable refusal, or an asynchronous send)."""
        if type(message) is Frame:
            self._send_frame(message)
        else:
            self._send_message(message)

    def recv(self, timeout: Optional[float] = None) -> Any:
        # Only ever called on a channel whose peer passed authentication (or a
        # local, permission-protected one): unpickling runs the peer's code.
        data = self.recv_bytes(timeout=timeout)
        if data and data[0]:  # a pickle (frames start with NUL): load_message's test, inline
            return pickle.loads(data)
        return load_message(data)

    def poll(self, timeout: Optional[float] = 0.0) -> bool:
        """True when a message (or EOF) is ready to be received."""
        self._check_open()
        return self._poll(deadline_after(timeout))



class BaseListener(_Closable):
    """Closed-state plumbing shared by every listener."""

    address: str = ""

    def __init__(self) -> None:
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ChannelClosed("operation on a closed listener")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address!r}{' closed' if self._closed else ''}>"
