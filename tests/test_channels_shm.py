"""shm:// beyond the shared contract: what the rendezvous leaves behind, exact
fileno readiness, peers that die, byte-stream mode across processes, and
falling back when shared memory is unusable."""
import hashlib
import os
import pickle
import selectors
import signal
import socket
import threading
import time
import warnings

import pytest

from _channel_support import address_for, channel_pair, peer_process
from _channel_support import no_leftovers  # noqa: F401  (fixture)
from ringipc.channels import address as address_mod
from ringipc.channels.address import connect, listen
from ringipc.errors import AuthenticationError, FallbackWarning, FrameError, SharedMemoryUnavailable
from ringipc.core.stream import RingStream
from ringipc.channels.transports import shm

pytestmark = pytest.mark.usefixtures("no_leftovers")


def _ring_names(ch):
    return [ch._conn._rx.name, ch._conn._tx.name]


def test_ring_names_are_gone_once_connected(tmp_path):
    with channel_pair("shm", tmp_path) as (a, b):
        for name in _ring_names(a):
            assert not os.path.exists(f"/dev/shm/{name}")
        b.send_bytes(b"still works")
        assert a.recv_bytes(timeout=10) == b"still works"


def test_fileno_is_readable_exactly_while_messages_wait(tmp_path):
    with channel_pair("shm", tmp_path) as (a, b), selectors.DefaultSelector() as sel:
        sel.register(a.fileno(), selectors.EVENT_READ)
        for i in range(300):
            b.send(i)
        for i in range(300):
            assert len(sel.select(10)) == 1, f"message {i} waits but fileno is not readable"
            assert a.recv(timeout=0) == i
        assert sel.select(0) == []
        assert a.poll(0) is False


def _thread_state(thread):
    with open(f"/proc/self/task/{thread.native_id}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("mode", ["message", "stream"])
def test_ends_made_with_a_timeout_block_when_their_socket_is_full(tmp_path, mode):
    """connect(timeout=...) waits for the rings with a socket timeout, which
    makes the connection's descriptor non-blocking; each end must be
    blocking again, or a send finding the doorbell socket full raises
    BlockingIOError instead of waiting for the reader."""
    with channel_pair("shm", tmp_path, mode=mode) as (a, b):
        for end in (a, b):
            assert os.get_blocking(end._sock.fileno()), "an end whose socket was left non-blocking"
        if mode == "stream":
            return
        filled = 0
        try:
            while True:  # fill the doorbell socket as unread doorbells would
                filled += b._sock.send(b"\x01" * 65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            pass
        errors = []

        def send():
            try:
                b.send_bytes(b"after the full socket")
            except BaseException as exc:
                errors.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + 30
        while sender.is_alive() and _thread_state(sender) != "S":  # until it sleeps in the kernel
            assert time.monotonic() < deadline
            os.sched_yield()
        assert not errors, errors
        while filled:  # the reader takes the doorbells: room for the sender's
            filled -= len(a._sock.recv(min(filled, 1 << 20)))
        sender.join(30)
        assert not sender.is_alive() and not errors, errors
        assert a.recv_bytes(timeout=10) == b"after the full socket"


def test_refused_message_is_discarded_and_the_channel_goes_on(tmp_path):
    with channel_pair("shm", tmp_path) as (a, b):
        b.send_bytes(b"x" * 100)
        b.send_bytes(b"after")
        with pytest.raises(FrameError):
            a.recv_bytes(maxlength=10, timeout=10)
        assert a.recv_bytes(timeout=10) == b"after"


def test_messages_larger_than_the_ring(tmp_path):
    with channel_pair("shm", tmp_path) as (a, b):
        big = hashlib.shake_256(b"big").digest(3 * a._conn._rx.max_message_size // 2)
        b.send_bytes(big)
        buf = bytearray(len(big))
        assert a.recv_bytes_into(buf, timeout=10) == len(big)
        assert buf == big


def test_large_object_is_unpickled_straight_from_its_side_segment(tmp_path, monkeypatch):
    from ringipc.core import large

    def no_bytes_copy(ref):
        raise AssertionError("recv() made a message-sized bytes copy before unpickling")
    monkeypatch.setattr(large, "load_bytes", no_bytes_copy)
    with channel_pair("shm", tmp_path) as (a, b):
        big = {"frame": hashlib.shake_256(b"obj").digest(3 * a._conn._rx.max_message_size // 2), "n": 7}
        b.send(big)
        b.send("small")
        b.send(big)
        assert a.recv(timeout=10) == big
        assert a.recv(timeout=10) == "small"
        a.max_message_size = 1 << 20  # under the pickled object's size: refused, and the channel goes on
        with pytest.raises(FrameError):
            a.recv(timeout=10)
        b.send("after")
        assert a.recv(timeout=10) == "after"


def test_large_message_into_a_short_buffer_and_lookalike_bytes(tmp_path):
    from ringipc.errors import BufferTooShort
    from ringipc.core.large import MAGIC

    with channel_pair("shm", tmp_path) as (a, b):
        big = hashlib.shake_256(b"short").digest(a._conn._rx.max_message_size + 1)
        for size in (10, len(big) - 1):  # shorter than the reference, then than the payload
            b.send_bytes(big)
            with pytest.raises(BufferTooShort) as info:
                a.recv_bytes_into(bytearray(size), timeout=10)
            assert info.value.args[0] == big
        lookalike = MAGIC + b"but only raw bytes"
        b.send_bytes(lookalike)
        buf = bytearray(100)
        assert buf[: a.recv_bytes_into(buf, timeout=10)] == lookalike
    # the autouse fixture fails the test if a side segment was left behind


def _block_forever(ch):
    ch.send("ready")
    ch.recv()  # never answered: the parent kills us here


def test_peer_sigkilled_while_we_wait(tmp_path):
    with peer_process("shm", tmp_path, _block_forever) as (ch, proc):
        assert ch.recv(timeout=60) == "ready"
        os.kill(proc.pid, signal.SIGKILL)
        with pytest.raises(EOFError):
            ch.recv()  # no timeout: the lifeline must end the wait
        with pytest.raises(BrokenPipeError):
            ch.send_bytes(b"to nobody")


def test_send_to_closed_peer_raises(tmp_path):
    with channel_pair("shm", tmp_path) as (a, b):
        a.close()
        with pytest.raises(BrokenPipeError):
            b.send_bytes(b"x")


def _stream_out(stream, total):
    digest = hashlib.sha256()
    for i in range(total // 65536):
        block = hashlib.shake_256(i.to_bytes(4, "little")).digest(65536)
        digest.update(block)
        view = memoryview(block)
        while view:
            view = view[stream.write(view):]
    stream.write(digest.hexdigest().encode())


def test_stream_mode_across_processes(tmp_path):
    total = 32 << 20
    with peer_process("shm", tmp_path, _stream_out, total, mode="stream") as (stream, proc):
        assert isinstance(stream, RingStream) and stream.readable() and stream.writable()
        with pytest.raises(TypeError):
            pickle.dumps(stream)  # its rings' names are already unlinked
        digest = hashlib.sha256()
        buf = bytearray(1 << 16)
        view = memoryview(buf)
        data_left = total
        tail = bytearray()
        while True:
            n = stream.readinto(buf)
            if n == 0:
                break
            take = min(n, data_left)
            digest.update(view[:take])
            data_left -= take
            tail += view[take:n]
        proc.join(60)
        assert proc.exitcode == 0
    assert data_left == 0
    assert tail.decode() == digest.hexdigest()


def test_authkey_is_checked_on_the_rendezvous(tmp_path):
    import threading

    with listen(address_for("shm", tmp_path), authkey=b"right") as lst:
        seen = []

        def accept():
            try:
                lst.accept(timeout=30).close()
            except Exception as exc:
                seen.append(type(exc))

        t = threading.Thread(target=accept)
        t.start()
        with pytest.raises(AuthenticationError):
            connect(lst.address, authkey=b"wrong", timeout=30)
        t.join()
        assert seen == [AuthenticationError]


def test_bad_name_is_an_address_error():
    from ringipc.errors import AddressError

    with pytest.raises(AddressError):
        listen("shm://a/b")


@pytest.fixture
def no_shared_memory(monkeypatch):
    def refuse():
        raise SharedMemoryUnavailable("test: /dev/shm is not usable")

    monkeypatch.setattr(shm, "_probe", refuse)
    monkeypatch.setattr(address_mod, "_fallback_warned", False)


def test_unavailable_shared_memory_falls_back_to_a_socket(no_shared_memory, tmp_path):
    name = f"shm-fallback-{os.getpid()}"
    with pytest.raises(SharedMemoryUnavailable):
        listen(f"shm://{name}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with listen(f"auto://{name}") as lst:
            assert lst.address.startswith("unix://")
    assert [w.category for w in caught] == [FallbackWarning]


def test_auto_uses_shared_memory_when_it_works(monkeypatch):
    import threading

    monkeypatch.setattr(address_mod, "_fallback_warned", False)
    name = f"shm-auto-{os.getpid()}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FallbackWarning
        with listen(f"auto://{name}") as lst:
            assert lst.address == f"shm://{name}"
            got = {}
            t = threading.Thread(target=lambda: got.setdefault("ch", lst.accept(timeout=30)))
            t.start()
            with connect(f"auto://{name}", timeout=30) as c:
                t.join()
                with got["ch"] as s:
                    assert isinstance(s, shm.ShmChannel)
                    c.send("over the ring")
                    assert s.recv(timeout=10) == "over the ring"


def test_peer_leaving_mid_exchange_leaves_no_rings(tmp_path):
    """A rendezvous peer that reads the ring offer and hangs up without
    attaching: accept() reports a reset and both new rings are gone."""
    import threading

    with listen(address_for("shm", tmp_path)) as lst:
        target = lst.address.partition("://")[2]
        seen = []

        def accept():
            try:
                lst.accept(timeout=30).close()
            except Exception as exc:
                seen.append(exc)

        t = threading.Thread(target=accept)
        t.start()
        with connect(f"unix://{shm.RENDEZVOUS_PREFIX}{target}", timeout=30) as raw:
            offer = raw.recv_bytes(timeout=30).decode().split("\n")
        t.join()
    assert len(offer) == 2 and [type(e) for e in seen] == [ConnectionResetError]
    for name in offer:
        assert not os.path.exists(f"/dev/shm/{name}")
