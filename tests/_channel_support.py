"""Shared helpers for the channel tests: opening a pair on every transport,
running a peer in a real process, and checking that nothing is left behind."""
from __future__ import annotations

import contextlib
import faulthandler
import itertools
import multiprocessing
import os
import random
import threading

import pytest

from ringipc.channels.address import connect, listen
from ringipc.channels.transports.pipe import pipe_pair

STREAM_TRANSPORTS = ["pipe", "fifo", "unix", "unix-abstract", "tcp"]
MESSAGE_TRANSPORTS = STREAM_TRANSPORTS + ["unixpacket", "mq", "shm", "unixgram", "unixgram-abstract", "sysvmq", "udp"]
# Parts of the contract a transport cannot honour, and why: the shared suite
# runs them as skips with this reason (see transports_for).
EXCLUDED = {
    ("sysvmq", "fileno"): "a System V message queue has no file descriptor to poll",
    ("udp", "lossless"): "UDP drops datagrams when a receiver falls behind: no burst without flow control is sure to arrive whole",
}


def transport_opts(transport: str) -> dict:
    """Options the suite passes to both ends: udp:// carries objects only when signed."""
    return {"authkey": b"ringipc contract suite"} if transport == "udp" else {}
# Transports with byte-stream mode; shm:// is not framed, so the framing
# fault tests (STREAM_TRANSPORTS) do not apply to it.
BYTESTREAM_TRANSPORTS = STREAM_TRANSPORTS + ["shm"]
MQUEUE_DIR = "/dev/mqueue"
HANG_GUARD_SECONDS = 180

_counter = itertools.count()
_fork = multiprocessing.get_context("fork")
_mq_names: list = []
_sysv_keys: list = []


def transports_for(*features: str, base=None) -> list:
    """``base`` (default MESSAGE_TRANSPORTS) as parameters, those that cannot
    honour one of ``features`` marked skipped with the reason."""
    out = []
    for t in MESSAGE_TRANSPORTS if base is None else base:
        reasons = [EXCLUDED[t, f] for f in features if (t, f) in EXCLUDED]
        out.append(pytest.param(t, marks=pytest.mark.skip(reason=f"{t}: {reasons[0]}")) if reasons else t)
    return out


def address_for(transport: str, tmp_path) -> str:
    """A fresh address for ``transport`` whose files all live in ``tmp_path``."""
    n = f"{os.getpid()}-{next(_counter)}"
    if transport == "mq":
        _mq_names.append(f"/ringipc-test-{n}")
    if transport == "sysvmq":
        # Random, so that concurrent test runs on one machine do not collide.
        key = random.randrange(1 << 24, 1 << 30)
        _sysv_keys.append(key)
        return f"sysvmq://{key}"
    return {
        "fifo": f"fifo://{tmp_path}/f{n}",
        "unix": f"unix://{tmp_path}/u{n}.sock",
        "unix-abstract": f"unix://@ringipc-test-{n}",
        "unixpacket": f"unixpacket://{tmp_path}/p{n}.sock",
        "unixgram": f"unixgram://{tmp_path}/g{n}.sock",
        "unixgram-abstract": f"unixgram://@ringipc-test-{n}",
        "tcp": "tcp://127.0.0.1:0",
        "udp": "udp://127.0.0.1:0",
        "mq": f"mq:///ringipc-test-{n}",
        "shm": f"shm://ringipc-test-{n}",
    }[transport]


@contextlib.contextmanager
def channel_pair(transport: str, tmp_path, mode: str = "message", **opts):
    """Two connected ends in this process: (listener side, connecting side)."""
    if transport == "pipe":
        a, b = pipe_pair(mode=mode, **opts)
        try:
            yield a, b
        finally:
            a.close()
            b.close()
        return
    opts = {**transport_opts(transport), **opts}
    with listen(address_for(transport, tmp_path), mode=mode, **opts) as lst:
        got = {}
        # accept() sends the greeting connect() waits for, so one must run beside the other.
        t = threading.Thread(target=lambda: got.setdefault("ch", lst.accept(timeout=30)))
        t.start()
        try:
            client = connect(lst.address, mode=mode, timeout=30, **opts)
        finally:
            t.join()
        server = got["ch"]
        try:
            yield server, client
        finally:
            server.close()
            client.close()


def _child_main(transport, address_or_end, target, args):
    if transport == "pipe":
        ch = address_or_end
    else:
        ch = connect(address_or_end, timeout=30, **args.pop("connect_opts", {}))
    try:
        target(ch, *args.get("extra", ()))
    finally:
        ch.close()


@contextlib.contextmanager
def peer_process(transport: str, tmp_path, target, *extra, **connect_opts):
    """Run ``target(channel, *extra)`` in a forked process connected to the
    channel this context yields."""
    connect_opts = {**transport_opts(transport), **connect_opts}
    args = {"extra": extra, "connect_opts": connect_opts}
    if transport == "pipe":
        mine, theirs = pipe_pair(**connect_opts)
        proc = _fork.Process(target=_child_main, args=(transport, theirs, target, {"extra": extra}))
        proc.start()
        theirs.close()  # or our copy would keep the child's EOF from ever showing
        try:
            yield mine, proc
        finally:
            mine.close()
            proc.join(60)
            if proc.is_alive():
                proc.kill()
                proc.join()
        return
    with listen(address_for(transport, tmp_path), **connect_opts) as lst:
        proc = _fork.Process(target=_child_main, args=(transport, lst.address, target, args))
        proc.start()
        try:
            ch = lst.accept(timeout=60)
            try:
                yield ch, proc
            finally:
                ch.close()
        finally:
            proc.join(60)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _mqueue_entries():
    try:
        # Only this run's queues: another test run may share the machine.
        return {e for e in os.listdir(MQUEUE_DIR) if e.startswith(f"ringipc-test-{os.getpid()}-")}
    except FileNotFoundError:
        return set()


@pytest.fixture
def no_leftovers(tmp_path):
    """Fail a test that leaves a socket, FIFO or message queue behind.

    Also a hang guard: a test that blocks for minutes is a bug (every wait
    here has a timeout), so dump the stacks and end the run instead of
    eating CI's time."""
    faulthandler.dump_traceback_later(HANG_GUARD_SECONDS, exit=True)
    mq_before = _mqueue_entries()
    del _mq_names[:]
    del _sysv_keys[:]
    yield tmp_path
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert not leftovers, f"files left in {tmp_path}: {leftovers}"
    new_queues = _mqueue_entries() - mq_before
    assert not new_queues, f"message queues left in {MQUEUE_DIR}: {sorted(new_queues)}"
    # /dev/mqueue need not be mounted: ask the kernel about each queue we named.
    stale = [q for name in _mq_names for q in (name + ".up", name + ".down") if mq_exists(q)]
    stale += [f"sysvmq://{key}" for key in _sysv_keys if sysv_exists(key)]
    faulthandler.cancel_dump_traceback_later()
    assert not stale, f"message queues left behind: {stale}"


def sysv_exists(key: int) -> bool:
    try:
        import sysv_ipc
    except ImportError:
        return False
    try:
        sysv_ipc.MessageQueue(key)
        return True
    except sysv_ipc.ExistentialError:
        return False


def mq_exists(name: str) -> bool:
    """Whether a queue is still there, also where /dev/mqueue is not mounted."""
    import posix_ipc

    try:
        posix_ipc.MessageQueue(name).close()
        return True
    except posix_ipc.ExistentialError:
        return False
