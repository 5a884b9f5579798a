"""``tcp://HOST:PORT``: the Channel API between machines.

A listener binds to loopback unless given another host (an empty host means
loopback, not "all interfaces").  Any non-loopback bind requires an
``authkey``: the listener then runs the HMAC challenge on every connection
before reading a single application byte, so an unauthenticated peer never
reaches ``pickle``.  ``tcp://HOST:0`` picks a free port; the listener's
``address`` shows the one chosen."""
from __future__ import annotations

import ipaddress
import socket
from typing import Any, Optional, Tuple

from ..address import register_scheme
from ..auth import check_authkey
from ...errors import AddressError
from .sockets import SocketListener, open_connection


def split_host_port(target: str) -> Tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port); an empty host is loopback."""
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise AddressError(f"tcp address must be tcp://HOST:PORT, got tcp://{target}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port_num = int(port)
    if port_num > 65535:
        raise AddressError(f"port {port_num} is out of range")
    return host or "127.0.0.1", port_num


def _nodelay(sock: socket.socket) -> None:
    # A frame is written in one or two calls; Nagle would hold the tail back.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _resolve(host: str, port: int, passive: bool) -> Tuple[Any, ...]:
    flags = socket.AI_PASSIVE if passive else 0
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, flags)
    if not infos:
        raise AddressError(f"cannot resolve {host!r}")
    return infos[0]


def _is_loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip.split("%", 1)[0]).is_loopback


def connect(target: str, **opts: Any) -> Any:
    host, port = split_host_port(target)
    family, kind, proto, _, sockaddr = _resolve(host, port, passive=False)
    return open_connection(family, kind, sockaddr, tune=_nodelay, **opts)


def listen(target: str, *, backlog: int = 64, authkey: Optional[bytes] = None, **opts: Any) -> Any:
    host, port = split_host_port(target)
    family, kind, proto, _, sockaddr = _resolve(host, port, passive=True)
    authkey = check_authkey(authkey)
    if authkey is None and not _is_loopback(sockaddr[0]):
        raise AddressError(
            f"refusing to listen on non-loopback {sockaddr[0]} without an authkey: any host that "
            "reaches it could make this process unpickle its data. Pass authkey=..."
        )
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
        bound = sock.getsockname()
    except BaseException:
        sock.close()
        raise
    shown = f"[{bound[0]}]" if family == socket.AF_INET6 else bound[0]
    return SocketListener(sock, f"tcp://{shown}:{bound[1]}", authkey=authkey, tune=_nodelay, **opts)


register_scheme("tcp", connect, listen)
