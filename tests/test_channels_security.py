"""Authentication, permissions and limits: who may connect, what is refused,
and what error says so."""
import multiprocessing
import os
import pickle
import resource
import socket
import stat
import threading
import warnings
from pathlib import Path

import pytest

from _channel_support import address_for
from _channel_support import no_leftovers  # noqa: F401  (fixture)
from ringipc.channels import address as address_mod
from ringipc.channels.address import connect, listen, register_scheme
from ringipc.errors import AddressError, AuthenticationError, FallbackWarning, ResourceLimitError, SharedMemoryUnavailable
from ringipc.channels.framing import HEADER

pytestmark = pytest.mark.usefixtures("no_leftovers")


class Marker:
    """Unpickling this creates a file: proof that someone unpickled it."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def accept_in_thread(lst, out):
    def run():
        try:
            out["ch"] = lst.accept(timeout=30)
        except BaseException as exc:  # handed to the test thread
            out["exc"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t


def test_authkey_round_trip_and_mismatches(tmp_path):
    with listen("tcp://127.0.0.1:0", authkey=b"right") as lst:
        out = {}
        t = accept_in_thread(lst, out)
        with connect(lst.address, authkey=b"right", timeout=30) as c:
            t.join()
            with out["ch"] as s:
                c.send({"ok": 1})
                assert s.recv(timeout=10) == {"ok": 1}
        for key in (b"wrong", None):
            out = {}
            t = accept_in_thread(lst, out)
            with pytest.raises(AuthenticationError):
                connect(lst.address, authkey=key, timeout=30)
            t.join()
            assert isinstance(out.get("exc"), (AuthenticationError, ConnectionResetError))


def test_client_with_key_refuses_open_listener(tmp_path):
    with listen("tcp://127.0.0.1:0") as lst:
        out = {}
        t = accept_in_thread(lst, out)
        with pytest.raises(AuthenticationError):
            connect(lst.address, authkey=b"k", timeout=30)
        t.join()
        out.get("ch") and out["ch"].close()


@pytest.mark.parametrize("read_greeting", [True, False])
def test_garbage_instead_of_handshake_is_never_unpickled(tmp_path, read_greeting):
    marker = tmp_path / "unpickled"
    evil = pickle.dumps(Marker(marker))
    with listen("tcp://127.0.0.1:0", authkey=b"secret") as lst:
        out = {}
        t = accept_in_thread(lst, out)
        host, port = lst.address[len("tcp://"):].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as raw:
            if read_greeting:
                raw.recv(9 + 32)
            # 64 bytes where the digest reply belongs, then a framed pickle.
            raw.sendall(bytes(64) + HEADER.pack(len(evil)) + evil)
            t.join()
            assert isinstance(out.get("exc"), AuthenticationError)
            # The listener must have hung up: reading ends in EOF, or a reset
            # because it closed with our garbage unread -- never in a wait.
            try:
                while raw.recv(4096):
                    pass
            except ConnectionResetError:
                pass
    assert not marker.exists()


def test_non_loopback_bind_needs_authkey():
    with pytest.raises(AddressError, match="authkey"):
        listen("tcp://0.0.0.0:0")
    with pytest.raises(AddressError, match="authkey"):
        listen("tcp://[::]:0")


def test_listener_binds_loopback_by_default():
    with listen("tcp://:0") as lst:
        assert lst.address.startswith("tcp://127.0.0.1:")


@pytest.mark.parametrize("scheme", ["unix", "unixpacket"])
def test_long_unix_path_suggests_abstract(tmp_path, scheme):
    with pytest.raises(AddressError, match="@NAME"):
        listen(f"{scheme}://{tmp_path}/{'x' * 120}.sock")
    with pytest.raises(AddressError, match="@NAME"):
        connect(f"{scheme}://{tmp_path}/{'x' * 120}.sock")


@pytest.mark.parametrize("transport", ["unix", "unixpacket", "fifo"])
def test_files_are_private_and_removed(tmp_path, transport):
    addr = address_for(transport, tmp_path)
    path = addr.split("://", 1)[1]
    old = os.umask(0)  # the widest umask must still give 0600
    try:
        lst = listen(addr)
    finally:
        os.umask(old)
    with lst:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with pytest.raises(FileExistsError):
            listen(addr)
    assert not os.path.exists(path)


def test_forked_child_does_not_remove_parents_socket(tmp_path):
    addr = address_for("unix", tmp_path)
    with listen(addr) as lst:
        proc = multiprocessing.get_context("fork").Process(target=lst.close)
        proc.start()
        proc.join(60)
        assert os.path.exists(addr.split("://", 1)[1])


def _connect_as_nobody(address, result):
    os.setuid(65534)
    try:
        connect(address, timeout=30).close()
        result.send("connected")
    except BaseException as exc:
        result.send(type(exc).__name__)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a peer as another user")
@pytest.mark.parametrize("transport", ["unix-abstract", "unixgram-abstract"])
def test_abstract_socket_refuses_other_users(transport, tmp_path):
    with listen(address_for(transport, tmp_path)) as lst:
        r, w = multiprocessing.Pipe(duplex=False)
        proc = multiprocessing.get_context("fork").Process(target=_connect_as_nobody, args=(lst.address, w))
        proc.start()
        with pytest.raises(AuthenticationError, match="uid 65534"):
            lst.accept(timeout=30)
        proc.join(60)
        assert r.recv() == "AuthenticationError"


def test_mq_limits_are_named(tmp_path):
    msgsize_max = int(Path("/proc/sys/fs/mqueue/msgsize_max").read_text())
    with pytest.raises(ResourceLimitError, match="msgsize_max"):
        listen(address_for("mq", tmp_path), max_message_size=msgsize_max + 1)
    msg_max = int(Path("/proc/sys/fs/mqueue/msg_max").read_text())
    with pytest.raises(ResourceLimitError, match="msg_max"):
        listen(address_for("mq", tmp_path), max_messages=msg_max + 1)
    soft, hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (1024, hard))
    try:
        with pytest.raises(ResourceLimitError, match="RLIMIT_MSGQUEUE"):
            listen(address_for("mq", tmp_path))
    finally:
        resource.setrlimit(resource.RLIMIT_MSGQUEUE, (soft, hard))


def test_bad_addresses():
    for bad in ("nowhere", "tcp://", "bogus://x", "tcp://host", "mq://no-slash", "tcp://h:99999"):
        with pytest.raises(AddressError):
            connect(bad)


@pytest.fixture
def fresh_fallback(monkeypatch):
    monkeypatch.setattr(address_mod, "_fallback_warned", False)
    monkeypatch.setattr(address_mod, "_registry", dict(address_mod._registry))


def _auto_round_trip(addr):
    lst = listen(addr)
    with lst:
        out = {}
        t = accept_in_thread(lst, out)
        with connect(addr, timeout=30) as c:
            t.join()
            with out["ch"] as s:
                c.send("via fallback")
                assert s.recv(timeout=10) == "via fallback"
        return lst.address


def test_auto_falls_back_to_unix_and_warns_once(fresh_fallback):
    def refuse(target, **opts):
        raise SharedMemoryUnavailable("no /dev/shm here")

    register_scheme("shm", refuse, refuse, replace=True)  # shm:// exists now: make it fail
    name = f"auto-test-{os.getpid()}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _auto_round_trip(f"auto://{name}").startswith("unix://")
    assert [w.category for w in caught] == [FallbackWarning]


def test_shm_unavailable_falls_back_only_when_asked(fresh_fallback):
    def refuse(target, **opts):
        raise SharedMemoryUnavailable("no /dev/shm here")

    register_scheme("shm", refuse, refuse, replace=True)
    with pytest.raises(SharedMemoryUnavailable):
        listen("shm://x")
    with pytest.warns(FallbackWarning, match="no /dev/shm"):
        lst = listen("shm://x", fallback=True)
    lst.close()


def test_ipv6_loopback(tmp_path):
    try:
        lst = listen("tcp://[::1]:0")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with lst:
        assert lst.address.startswith("tcp://[::1]:")
        out = {}
        t = accept_in_thread(lst, out)
        with connect(lst.address, timeout=30) as c:
            t.join()
            with out["ch"] as s:
                c.send_bytes(b"six")
                assert s.recv_bytes(timeout=10) == b"six"


@pytest.mark.parametrize("transport", ["fifo", "unix", "unix-abstract", "unixpacket", "mq"])
def test_connect_to_nobody_fails_cleanly(transport, tmp_path):
    with pytest.raises((ConnectionRefusedError, FileNotFoundError)):
        connect(address_for(transport, tmp_path), timeout=10)


@pytest.mark.parametrize("transport", ["fifo", "unix", "tcp", "mq"])
def test_connect_times_out_when_nobody_accepts(transport, tmp_path):
    """A listener that never calls accept(): connect gives up at its deadline
    and leaves nothing behind (the FIFO rendezvous pair included)."""
    with listen(address_for(transport, tmp_path)) as lst:
        # A queue takes a hello without anyone accepting: fill it (10 slots)
        # so that the hello itself must wait.
        fillers = [connect(lst.address, timeout=10) for _ in range(10 if transport == "mq" else 0)]
        with pytest.raises(TimeoutError):
            connect(lst.address, timeout=0.05)
        for ch in fillers:
            ch.close()


def test_fifo_connect_never_writes_into_a_regular_file(tmp_path):
    victim = tmp_path / "not-a-fifo"
    victim.write_bytes(b"precious")
    with pytest.raises(AddressError, match="not a FIFO"):
        connect(f"fifo://{victim}", timeout=10)
    assert victim.read_bytes() == b"precious"
    victim.unlink()


def test_silent_peer_cannot_hold_accept(tmp_path):
    with listen("tcp://127.0.0.1:0", authkey=b"k", handshake_timeout=0.05) as lst:
        host, port = lst.address[len("tcp://"):].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30):
            with pytest.raises(TimeoutError):
                lst.accept()  # no timeout of its own: only handshake_timeout ends it


@pytest.mark.parametrize("transport", ["fifo", "unix", "tcp"])
def test_listener_closing_before_accept_ends_a_waiting_connect(transport, tmp_path):
    """The connecting side notices that the listener went away instead of
    waiting for an accept that will never come."""
    import selectors

    lst = listen(address_for(transport, tmp_path))
    out = {}

    def run():
        try:
            out["ch"] = connect(lst.address)  # no timeout: only the listener's death can end it
        except BaseException as exc:
            out["exc"] = exc

    t = threading.Thread(target=run)
    with lst, selectors.DefaultSelector() as sel:
        sel.register(lst.fileno(), selectors.EVENT_READ)
        t.start()
        assert sel.select(30), "the connection attempt never reached the listener"
    t.join(30)
    assert not t.is_alive()
    assert isinstance(out.get("exc"), (ConnectionRefusedError, ConnectionResetError)), out


def test_registered_shm_is_used_without_warning(fresh_fallback):
    opened = []

    def fake(target, **opts):
        opened.append((target, opts))
        return "shm-channel"

    register_scheme("shm", fake, fake, replace=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert connect("auto://jobs", timeout=1) == "shm-channel"
        assert listen("shm://jobs", fallback=True) == "shm-channel"
    assert opened == [("jobs", {"timeout": 1}), ("jobs", {})]
