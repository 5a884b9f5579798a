"""wait(): multiprocessing.connection.wait() that understands ringipc Connections.

A ringipc Connection's socket carries no data (see connection.py), so a
poller on ``fileno()`` only sees EOF.  This wait() asks the rings
themselves, and sleeps on their doorbells (ringipc.core.doorbell): for each
ring Connection it arms a bell on the receive ring and waits, with
multiprocessing's wait(), on the bells, the Connections' sockets (readable
once the peer is gone) and every other object.  No polling: a commit by any
process rings the bell of an armed Connection.  Bells not rung are disarmed
before returning, so writers pay nothing once nobody waits.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, List, Optional

from multiprocessing import connection as _mp_connection

from ..core.doorbell import Doorbell
from .connection import Connection

# multiprocessing's own, taken now: ringipc.install() may later put this
# module's wait() in its place.
_mp_wait = _mp_connection.wait


def _bell(conn: Connection) -> Doorbell:
    bell = conn.__dict__.get("_wait_bell")
    if bell is None or bell.closed or bell.inherited:
        bell = conn._wait_bell = Doorbell(conn._rx)
    return bell


def wait(object_list: Iterable[Any], timeout: Optional[float] = None) -> List[Any]:
    """multiprocessing.connection.wait() that also understands ringipc Connections.

    Ring connections are ready when a message or EOF is there; other objects
    (connections, sockets, sentinels, fds) are handed to multiprocessing's
    wait()."""
    objects = list(object_list)
    rings = [o for o in objects if isinstance(o, Connection)]
    others = [o for o in objects if not isinstance(o, Connection)]
    if not rings:
        return _mp_wait(others, timeout)
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
    while True:
        ready = {id(c) for c in rings if c._poll(0)}
        if others:
            ready.update(id(o) for o in _mp_wait(others, 0))
        if ready:
            return [o for o in objects if id(o) in ready]
        left = None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return []
        bells = [_bell(c) for c in rings]
        try:
            armed_ready = False
            for bell in bells:
                bell.drain()
                if bell.arm():
                    armed_ready = True  # it came meanwhile: look again at once
            if not armed_ready:
                _mp_wait(others + bells + [c._sock for c in rings], left)
        finally:
            for bell in bells:
                bell.disarm()
