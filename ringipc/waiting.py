"""wait(): multiprocessing.connection.wait() that understands ringipc Connections.

A ringipc Connection's socket carries no data (see connection.py), so a
poller on ``fileno()`` only sees EOF.  This wait() asks the rings themselves
and hands every other object to multiprocessing's wait().
"""
import time

from multiprocessing import connection as _mp_connection

from .connection import Connection

# multiprocessing's own, taken now: ringipc.install() may later put this
# module's wait() in its place.
_mp_wait = _mp_connection.wait

WAIT_SLICE_MIN = 0.0005
WAIT_SLICE_MAX = 0.01


def wait(object_list, timeout=None):
    """multiprocessing.connection.wait() that also understands ringipc Connections.

    Ring connections are ready when a message or EOF is there; other objects
    (connections, sockets, sentinels, fds) are handed to multiprocessing's
    wait().  With ring connections in the list the wait polls in slices that
    grow from WAIT_SLICE_MIN to WAIT_SLICE_MAX, so readiness is seen that late."""
    objects = list(object_list)
    rings = [o for o in objects if isinstance(o, Connection)]
    others = [o for o in objects if not isinstance(o, Connection)]
    if not rings:
        return _mp_wait(others, timeout)
    if len(rings) == 1 and not others:
        return rings if rings[0]._poll(timeout) else []
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
    slice_ = WAIT_SLICE_MIN
    while True:
        ready = {id(c) for c in rings if c._poll(0)}
        if others:
            ready.update(id(o) for o in _mp_wait(others, 0))
        if ready:
            return [o for o in objects if id(o) in ready]
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            slice_ = min(slice_, left)
        if others:
            # Sleeps on the other objects; wakes early if one becomes ready.
            _mp_wait(others, slice_)
        else:
            time.sleep(slice_)
        slice_ = min(slice_ * 2, WAIT_SLICE_MAX)
