"""sysvmq:// specifics: message types keep channels on one queue apart, the
kernel's limits are named, the creator removes the queue (and cleanup finds
one a killed creator left), and waits stay interruptible."""
import multiprocessing
import os
import signal
import subprocess
import sys
import threading

import pytest

sysv_ipc = pytest.importorskip("sysv_ipc", reason="sysvmq:// needs the sysv_ipc package")

from _channel_support import address_for, channel_pair, peer_process, sysv_exists  # noqa: E402
from _channel_support import no_leftovers  # noqa: F401,E402  (fixture)
from ringipc.channels.address import connect, listen  # noqa: E402
from ringipc.errors import AddressError, FrameError, MessageTooLarge, ResourceLimitError  # noqa: E402
from ringipc.channels.transports import sysvmq  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_leftovers")


def _key(address: str) -> int:
    return int(address.split("://", 1)[1])


def test_channels_on_one_queue_are_kept_apart_by_message_type(tmp_path):
    with listen(address_for("sysvmq", tmp_path)) as lst:
        clients, servers = [], []
        try:
            for _ in range(3):
                out = {}
                t = threading.Thread(target=lambda: out.setdefault("s", lst.accept(timeout=30)))
                t.start()
                clients.append(connect(lst.address, timeout=30))
                t.join()
                servers.append(out["s"])
            types = {(c.send_type, c.recv_type) for c in clients}
            assert len(types) == 3 and all(s % 2 == 0 and r == s + 1 for s, r in types)
            for s, c in zip(servers, clients):
                assert (s.recv_type, s.send_type) == (c.send_type, c.recv_type)
            for i, c in enumerate(clients):
                c.send_bytes(b"from client %d" % i)
            for i, s in reversed(list(enumerate(servers))):  # any order: each reads its own type
                assert s.recv_bytes(timeout=10) == b"from client %d" % i
                s.send_bytes(b"to client %d" % i)
            for i, c in enumerate(clients):
                assert c.recv_bytes(timeout=10) == b"to client %d" % i
        finally:
            for ch in clients + servers:
                ch.close()


def test_limits_are_checked_and_named(tmp_path):
    msgmax = sysvmq.read_limit("msgmax")
    with pytest.raises(ResourceLimitError, match="msgmax"):
        listen(address_for("sysvmq", tmp_path), max_message_size=msgmax + 1)
    with channel_pair("sysvmq", tmp_path, max_message_size=100) as (a, b):
        assert b.transport_limit == 99  # an S-byte message is a control message
        with pytest.raises(MessageTooLarge):
            b.send_bytes(b"x" * 100)
        b.send_bytes(b"x" * 99)
        assert a.recv_bytes(timeout=10) == b"x" * 99


@pytest.mark.parametrize("timeout", [None, 10], ids=["fast-path", "general-path"])
def test_empty_messages_limits_and_eof_on_both_receive_paths(tmp_path, timeout):
    with channel_pair("sysvmq", tmp_path, max_message_size=100) as (a, b):
        b.send_bytes(b"")
        b.send_bytes(b"y" * 11)
        b.send_bytes(b"z" * 10)
        assert a.recv_bytes(timeout=timeout) == b""
        a.max_message_size = 10
        with pytest.raises(FrameError, match="over the 10-byte limit"):
            a.recv_bytes(timeout=timeout)
        assert a.recv_bytes(timeout=timeout) == b"z" * 10
        b.close()
        with pytest.raises(EOFError):
            a.recv_bytes(timeout=timeout)
        assert a.poll(0)


def test_creator_removes_the_queue_after_its_last_channel(tmp_path):
    lst = listen(address_for("sysvmq", tmp_path))
    key = _key(lst.address)
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("s", lst.accept(timeout=30)))
    t.start()
    client = connect(lst.address, timeout=30)
    t.join()
    server = out["s"]
    lst.close()
    assert sysv_exists(key), "closing the listener took the queue from a channel still open"
    client.send_bytes(b"still here")
    assert server.recv_bytes(timeout=10) == b"still here"
    server.close()
    assert not sysv_exists(key)
    with pytest.raises(EOFError):
        client.recv_bytes(timeout=10)  # the queue is gone: end of file
    client.close()


def _listen_and_wait(address, ready):
    lst = listen(address)
    ready.send(os.getpid())
    signal.pause()
    lst.close()


def test_cleanup_removes_the_queue_of_a_killed_creator(tmp_path):
    address = address_for("sysvmq", tmp_path)
    r, w = multiprocessing.Pipe(duplex=False)
    proc = multiprocessing.get_context("fork").Process(target=_listen_and_wait, args=(address, w))
    proc.start()
    try:
        pid = r.recv()
        found = {q["key"]: q for q in sysvmq.list_queues()}
        assert found[_key(address)]["creator_pid"] == pid and not found[_key(address)]["orphaned"]
    finally:
        proc.kill()
        proc.join(60)
    assert sysv_exists(_key(address)), "SIGKILL should have left the queue behind"
    out = subprocess.run([sys.executable, "-m", "ringipc", "cleanup", "--dry-run"],
                         capture_output=True, text=True, timeout=120)
    assert f"{_key(address):#x}" in out.stdout and "orphaned" in out.stdout
    assert sysv_exists(_key(address))
    assert _key(address) in sysvmq.remove_orphans()
    assert not sysv_exists(_key(address))


def _send_then_wait(ch):
    ch.send_bytes(b"before dying")
    signal.pause()


def test_timed_receive_notices_a_killed_peer(tmp_path):
    with peer_process("sysvmq", tmp_path, _send_then_wait) as (ch, proc):
        assert ch.recv_bytes(timeout=60) == b"before dying"
        proc.kill()
        proc.join(60)
        with pytest.raises(EOFError, match="exited"):
            ch.recv_bytes(timeout=60)


def test_signal_during_blocking_receive(tmp_path):
    fired = []

    def handler(signum, frame):
        fired.append(signum)
        if len(fired) == 2:
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, handler)
    try:
        with channel_pair("sysvmq", tmp_path) as (a, b):
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            with pytest.raises(TimeoutError):
                a.recv_bytes(timeout=0.2)
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            with pytest.raises(KeyboardInterrupt):
                a.recv_bytes()  # no timeout: blocks in msgrcv until the handler raises
            b.send_bytes(b"nothing lost")
            assert a.recv_bytes(timeout=10) == b"nothing lost"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_ftok_path_address_and_bad_addresses(tmp_path):
    anchor = tmp_path / "anchor"
    anchor.write_text("")
    try:
        with listen(f"sysvmq://{anchor}") as lst:
            key = lst.key
            out = {}
            t = threading.Thread(target=lambda: out.setdefault("s", lst.accept(timeout=30)))
            t.start()
            with connect(f"sysvmq://{anchor}", timeout=30) as c:
                t.join()
                with out["s"] as s:
                    c.send_bytes(b"by path")
                    assert s.recv_bytes(timeout=10) == b"by path"
        assert not sysv_exists(key)
    finally:
        anchor.unlink()
    for bad in ("sysvmq://0", "sysvmq://nonsense", f"sysvmq://{tmp_path}/missing"):
        with pytest.raises(AddressError):
            connect(bad, timeout=1)
    with pytest.raises(ConnectionRefusedError):
        connect(address_for("sysvmq", tmp_path), timeout=1)
