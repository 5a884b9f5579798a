"""Addresses, the scheme registry, and ``connect``/``listen``.

An address is ``SCHEME://TARGET``: ``fifo:///PATH``, ``unix:///PATH``,
``unix://@NAME`` (Linux abstract namespace), ``unixpacket:///PATH``,
``tcp://HOST:PORT``, ``mq:///NAME``, ``shm://NAME`` and ``auto://NAME``;
``unixgram:///PATH`` (``@NAME``), ``udp://HOST:PORT`` and ``sysvmq://KEY``.
Each transport module registers its scheme here with :func:`register_scheme`;
built-in transports are imported only when their scheme is first used, so
``posix_ipc`` is not needed by someone who never opens ``mq://``.
"""
from __future__ import annotations

import importlib
import io
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Literal, Union, cast, overload

from ..errors import AddressError, FallbackWarning, SharedMemoryUnavailable
from .channel import Channel, Listener

# Scheme -> module that registers it on import.  ``shm`` is provided by the
# shared-memory ring's channel module; until it exists, ``auto://`` falls back.
_BUILTIN = {
    "fifo": "ringipc.channels.transports.fifo",
    "unix": "ringipc.channels.transports.unix",
    "unixpacket": "ringipc.channels.transports.unix",
    "unixgram": "ringipc.channels.transports.unixgram",
    "tcp": "ringipc.channels.transports.tcp",
    "udp": "ringipc.channels.transports.udp",
    "mq": "ringipc.channels.transports.mq",
    "sysvmq": "ringipc.channels.transports.sysvmq",
    "shm": "ringipc.channels.transports.shm",
}


@dataclass(frozen=True)
class Address:
    scheme: str
    target: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.target}"


@dataclass(frozen=True)
class Scheme:
    """How to open one scheme: ``connect(target, **opts)`` and ``listen(target, **opts)``."""

    name: str
    connect: Callable[..., Any]
    listen: Callable[..., Any]


_registry: Dict[str, Scheme] = {}
_lock = threading.Lock()
_fallback_warned = False


def parse(address: str) -> Address:
    """Split ``SCHEME://TARGET``; raise :class:`AddressError` for anything else."""
    if not isinstance(address, str):
        raise AddressError(f"an address is a string like 'unix:///tmp/app.sock', not {address!r}")
    scheme, sep, target = address.partition("://")
    if not sep or not scheme or not target:
        raise AddressError(f"{address!r} is not of the form SCHEME://TARGET (e.g. 'tcp://127.0.0.1:5000')")
    return Address(scheme.lower(), target)


def register_scheme(name: str, connect: Callable[..., Any], listen: Callable[..., Any], *, replace: bool = False) -> None:
    """Make ``name://`` usable with :func:`connect` and :func:`listen`."""
    with _lock:
        if name in _registry and not replace:
            raise ValueError(f"scheme {name!r} is already registered")
        _registry[name] = Scheme(name, connect, listen)


def lookup(name: str) -> Scheme:
    """The registered scheme ``name``, importing its built-in module on first use."""
    scheme = _registry.get(name)
    if scheme is not None:
        return scheme
    module = _BUILTIN.get(name)
    if module is None:
        known = ", ".join(sorted(set(_BUILTIN) | set(_registry) | {"auto"}))
        raise AddressError(f"unknown address scheme {name!r} (known: {known})")
    importlib.import_module(module)
    scheme = _registry.get(name)
    if scheme is None:
        raise AddressError(f"module {module} did not register scheme {name!r}")
    return scheme


def fallback_address(name: str) -> Address:
    """Where ``auto://NAME`` goes when shared memory cannot be used: an abstract
    UNIX socket on Linux (nothing on disk to leave behind), a socket file
    in the temp directory elsewhere."""
    if sys.platform.startswith("linux"):
        return Address("unix", f"@ringipc-{name}")
    return Address("unix", f"{tempfile.gettempdir()}/ringipc-{name}.sock")


def _warn_fallback(reason: BaseException) -> None:
    global _fallback_warned
    if _fallback_warned:
        return
    _fallback_warned = True
    warnings.warn(
        f"shared memory is not usable ({type(reason).__name__}: {reason}); using a UNIX socket instead",
        FallbackWarning,
        stacklevel=4,
    )


def _open(kind: str, address: str, opts: Dict[str, Any]) -> Any:
    addr = parse(address)
    if addr.scheme not in ("auto", "shm"):
        return getattr(lookup(addr.scheme), kind)(addr.target, **opts)
    fallback = opts.pop("fallback", addr.scheme == "auto")
    try:
        scheme = lookup("shm")
    except (ImportError, AddressError) as exc:
        if not fallback:
            raise AddressError(f"shm:// is not available here: {exc}") from exc
        reason: BaseException = exc
    else:
        try:
            return getattr(scheme, kind)(addr.target, **opts)
        except SharedMemoryUnavailable as exc:
            if not fallback:
                raise
            reason = exc
    _warn_fallback(reason)
    target = fallback_address(addr.target)
    return getattr(lookup(target.scheme), kind)(target.target, **opts)


@overload
def connect(address: str, *, mode: Literal["message"] = ..., **opts: Any) -> Channel: ...
@overload
def connect(address: str, *, mode: Literal["stream"], **opts: Any) -> io.RawIOBase: ...
@overload
def connect(address: str, *, mode: str, **opts: Any) -> Union[Channel, io.RawIOBase]: ...


def connect(address: str, **opts: Any) -> Any:
    """Open a channel to ``address``.

    Common options: ``mode="message"`` (default; a :class:`~ringipc.channels.channel.Channel`)
    or ``mode="stream"`` (a :class:`~ringipc.channels.bytestream.ByteStream`), ``timeout``
    (seconds to connect and authenticate), ``authkey`` (bytes), and
    ``max_message_size``.  ``shm://`` accepts ``fallback=True``."""
    return _open("connect", address, opts)


def listen(address: str, **opts: Any) -> Listener:
    """Listen on ``address``; the listener's ``accept()`` returns channels.

    Takes the same options as :func:`connect`; ``tcp://`` needs ``authkey``
    for anything but a loopback address."""
    return cast(Listener, _open("listen", address, opts))


def check_mode(mode: str) -> str:
    if mode not in ("message", "stream"):
        raise ValueError(f"mode must be 'message' or 'stream', not {mode!r}")
    return mode


__all__ = ["Address", "Scheme", "parse", "register_scheme", "lookup", "connect", "listen", "fallback_address"]
