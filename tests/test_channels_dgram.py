"""unixgram:// and udp:// specifics: what accept() means for a connectionless
socket, end-of-file and peer death carried by the lifeline, size limits,
and bad datagrams (oversize, truncated, foreign, forged, replayed)."""
import multiprocessing
import os
import signal
import socket
import threading

import pytest

from _channel_support import address_for, channel_pair, peer_process
from _channel_support import no_leftovers  # noqa: F401  (fixture)
from ringipc.channels.address import connect, listen
from ringipc.errors import AuthenticationError, ChannelClosed, FrameError, MessageTooLarge

pytestmark = pytest.mark.usefixtures("no_leftovers")
UNIXGRAM = ["unixgram", "unixgram-abstract"]


def _send_then_wait(ch):
    ch.send_bytes(b"before dying")
    ch.recv_bytes()  # never answered: the parent kills us here


@pytest.mark.parametrize("transport", UNIXGRAM)
def test_receiver_sees_eof_when_the_peer_is_killed(transport, tmp_path):
    """No end-of-file datagram is ever sent by a SIGKILLed peer: the lifeline
    ends a receive that has no timeout, after what the peer had sent."""
    with peer_process(transport, tmp_path, _send_then_wait) as (ch, proc):
        assert ch.poll(60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(60)
        assert ch.recv_bytes() == b"before dying"
        with pytest.raises(EOFError):
            ch.recv_bytes()  # no timeout: only the lifeline can end this
        assert ch.poll(0)  # end-of-file stays ready
        with pytest.raises(EOFError):
            ch.recv_bytes_into(bytearray(8), timeout=10)


@pytest.mark.parametrize("transport", UNIXGRAM)
def test_fileno_turns_readable_when_the_peer_goes(transport, tmp_path):
    import selectors

    with channel_pair(transport, tmp_path) as (a, b), selectors.DefaultSelector() as sel:
        sel.register(a.fileno(), selectors.EVENT_READ)
        assert sel.select(0) == []
        b.close()
        assert len(sel.select(10)) == 1
        with pytest.raises(EOFError):
            a.recv_bytes(timeout=10)


@pytest.mark.parametrize("transport", UNIXGRAM)
def test_send_to_a_closed_peer_is_a_broken_pipe(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        a.close()
        with pytest.raises(BrokenPipeError):
            b.send_bytes(b"anyone?")
        with pytest.raises(BrokenPipeError):
            b.send_bytes(b"x" * 10000)  # the general path says the same


def test_unixgram_oversize_is_refused_before_sending(tmp_path):
    with channel_pair("unixgram", tmp_path) as (a, b):
        limit = b.transport_limit
        with pytest.raises(MessageTooLarge):
            b.send_bytes(bytes(limit + 1))
        assert not a.poll(0)
        b.send_bytes(b"\1" * limit)  # the limit itself fits (the full send buffer is taken for it)
        assert a.recv_bytes(timeout=30) == b"\1" * limit


@pytest.mark.parametrize("timeout", [None, 10], ids=["fast-path", "general-path"])
def test_unixgram_over_the_receive_limit_is_refused_and_the_next_arrives(tmp_path, timeout):
    with channel_pair("unixgram", tmp_path, max_message_size=100) as (a, b):
        for size in (100, 101, 5000, 0):
            b.send_bytes(b"k" * size)
        assert a.recv_bytes(timeout=timeout) == b"k" * 100
        for _ in range(2):
            with pytest.raises(FrameError, match="over the 100-byte limit"):
                a.recv_bytes(timeout=timeout)
        assert a.recv_bytes(timeout=timeout) == b""
        b.send_bytes(b"z" * 101)
        with pytest.raises(FrameError):
            a.recv_bytes_into(bytearray(1000), timeout=timeout)
        assert not a.closed


@pytest.mark.parametrize("packet", [b"\x02" + bytes(15) + b"another tag", b"\x01short", b""],
                         ids=["foreign-header", "truncated", "empty"])
@pytest.mark.parametrize("timeout", [None, 10], ids=["fast-path", "general-path"])
def test_unixgram_foreign_or_truncated_datagram_closes_the_channel(tmp_path, packet, timeout):
    with channel_pair("unixgram", tmp_path) as (a, b):
        b._sock.send(packet)
        with pytest.raises(FrameError, match="without ringipc's header"):
            a.recv_bytes(timeout=timeout)
        assert a.closed
        with pytest.raises(ChannelClosed):
            a.recv_bytes()


def test_unixgram_nobody_else_can_send_into_a_channel(tmp_path):
    """Both sockets of a channel are connected to each other: the kernel refuses
    datagrams to either from any third socket."""
    with channel_pair("unixgram-abstract", tmp_path) as (a, b):
        intruder = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            with pytest.raises(OSError):
                intruder.sendto(b"\x01" + bytes(15) + b"injected", a._sock.getsockname())
        finally:
            intruder.close()
        b.send_bytes(b"genuine")
        assert a.recv_bytes(timeout=10) == b"genuine"
        assert not a.poll(0)


def _produce(address, tag):
    with connect(address, timeout=60) as ch:
        for i in range(50):
            ch.send_bytes(b"%s:%d" % (tag, i))
        assert ch.recv_bytes(timeout=60) == b"ack " + tag


def test_unixgram_listener_serves_many_peers_each_on_its_own_channel(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with listen(address_for("unixgram", tmp_path)) as lst:
        tags = [b"a", b"b", b"c"]
        procs = [ctx.Process(target=_produce, args=(lst.address, t)) for t in tags]
        for p in procs:
            p.start()
        channels = [lst.accept(timeout=60) for _ in procs]
        try:
            for ch in channels:
                first = ch.recv_bytes(timeout=60)
                tag = first.split(b":")[0]
                rest = [ch.recv_bytes(timeout=60) for _ in range(49)]
                assert [first] + rest == [b"%s:%d" % (tag, i) for i in range(50)]
                ch.send_bytes(b"ack " + tag)
            for p in procs:
                p.join(60)
                assert p.exitcode == 0
        finally:
            for ch in channels:
                ch.close()


@pytest.mark.parametrize("transport", UNIXGRAM + ["udp"])
def test_authkey_handshake(transport, tmp_path):
    with channel_pair(transport, tmp_path, authkey=b"right") as (a, b):
        b.send({"signed": True})
        assert a.recv(timeout=10) == {"signed": True}
    for server_key, client_key in ((b"right", b"wrong"), (b"right", None), (None, b"right")):
        with listen(address_for(transport, tmp_path), authkey=server_key) as lst:
            out = {}

            def run():
                try:
                    out["ch"] = lst.accept(timeout=10)
                except BaseException as exc:
                    out["exc"] = exc

            t = threading.Thread(target=run)
            t.start()
            try:
                with pytest.raises(AuthenticationError):
                    connect(lst.address, timeout=10, authkey=client_key)
            finally:
                t.join()
                if "ch" in out:
                    out["ch"].close()
            # The listener either refused (AuthenticationError) or the peer walked out.
            assert "ch" in out or isinstance(out["exc"], (AuthenticationError, ConnectionResetError, TimeoutError))


@pytest.mark.parametrize("transport", UNIXGRAM)
def test_unixgram_connect_to_nobody_and_to_a_listener_that_closes(transport, tmp_path):
    with pytest.raises((ConnectionRefusedError, FileNotFoundError)):
        connect(address_for(transport, tmp_path), timeout=10)
    lst = listen(address_for(transport, tmp_path))
    out = {}

    def run():
        try:
            out["ch"] = connect(lst.address)  # no timeout: only the listener's close ends it
        except BaseException as exc:
            out["exc"] = exc

    import selectors

    t = threading.Thread(target=run)
    with lst, selectors.DefaultSelector() as sel:
        sel.register(lst.fileno(), selectors.EVENT_READ)
        t.start()
        assert sel.select(30), "the hello never reached the listener"
    t.join(30)
    assert not t.is_alive()
    assert isinstance(out.get("exc"), ConnectionResetError), out


# --- udp -------------------------------------------------------------------------------------
def test_udp_unsigned_carries_bytes_only(tmp_path):
    with channel_pair("udp", tmp_path, authkey=None) as (a, b):
        b.send_bytes(b"plain bytes")
        assert a.recv_bytes(timeout=10) == b"plain bytes"
        with pytest.raises(AuthenticationError, match="authkey"):
            b.send({"no": "pickles"})
        b.send_bytes(b"\x80\x05N.")  # a pickle of None, sent as bytes
        with pytest.raises(AuthenticationError, match="authkey"):
            a.recv(timeout=10)
        assert a.recv_bytes(timeout=10) == b"\x80\x05N."  # refused before anything was taken


@pytest.mark.parametrize("key", [None, b"k"], ids=["unsigned", "signed"])
def test_udp_size_limit(tmp_path, key):
    with channel_pair("udp", tmp_path, authkey=key) as (a, b):
        assert b.transport_limit == 65507 - 16 - (16 if key else 0)
        with pytest.raises(MessageTooLarge):
            b.send_bytes(bytes(b.transport_limit + 1))
        b.send_bytes(b"\2" * b.transport_limit)
        assert a.recv_bytes(timeout=10) == b"\2" * b.transport_limit
        a.max_message_size = 10
        b.send_bytes(b"y" * 11)
        b.send_bytes(b"z")
        with pytest.raises(FrameError, match="over the 10-byte limit"):
            a.recv_bytes(timeout=10)
        assert a.recv_bytes(timeout=10) == b"z"


@pytest.mark.parametrize("datagram", [b"\x01short", b"\x09" + bytes(15) + b"foreign"], ids=["truncated", "foreign"])
def test_udp_unsigned_bad_datagram_is_refused_and_the_channel_goes_on(tmp_path, datagram):
    with channel_pair("udp", tmp_path, authkey=None) as (a, b):
        b._sock.send(datagram)
        b.send_bytes(b"after")
        with pytest.raises(FrameError):
            a.recv_bytes(timeout=10)
        assert a.recv_bytes(timeout=10) == b"after"


def test_udp_signed_forged_and_replayed_datagrams_are_dropped(tmp_path):
    with channel_pair("udp", tmp_path, authkey=b"k") as (a, b):
        genuine = b._datagram(1, b"once")
        b._sock.send(genuine)
        b._sock.send(genuine)  # a replay (or a network duplicate)
        forged = bytearray(b._datagram(1, b"tampered"))
        forged[-1] ^= 1
        b._sock.send(bytes(forged))
        b._sock.send(b"\x01short")  # truncated: cannot carry a signature
        b._sock.send(b"\x01" + bytes(15) + b"unsigned" + bytes(16))
        b.send_bytes(b"after")
        assert a.recv_bytes(timeout=10) == b"once"
        assert a.recv_bytes(timeout=10) == b"after"
        assert (a.stale, a.forged) == (1, 3)
        assert not a.poll(0)
        # poll() takes a forged datagram off rather than report it ready
        b._sock.send(bytes(forged))
        assert a.poll(0.05) is False
        assert a.forged == 4


def test_udp_overtaken_datagram_is_dropped(tmp_path):
    """At most once and in order: a datagram older than one already delivered never arrives."""
    with channel_pair("udp", tmp_path, authkey=None) as (a, b):
        late = b._datagram(1, b"late")
        b.send_bytes(b"early")
        b._sock.send(late)
        b.send_bytes(b"last")
        assert a.recv_bytes(timeout=10) == b"early"
        assert a.recv_bytes(timeout=10) == b"last"
        assert a.stale == 1


def test_udp_connect_times_out_when_nobody_answers(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # takes the hellos, answers none
        with pytest.raises(TimeoutError):
            connect(f"udp://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3)


def test_udp_ipv6_loopback(tmp_path):
    try:
        lst = listen("udp://[::1]:0")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with lst:
        assert lst.address.startswith("udp://[::1]:")
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("ch", lst.accept(timeout=30)))
        t.start()
        with connect(lst.address, timeout=30) as c:
            t.join()
            with out["ch"] as s:
                assert c.transport_limit == 65527 - 16
                c.send_bytes(b"six")
                assert s.recv_bytes(timeout=10) == b"six"


@pytest.mark.parametrize("transport", UNIXGRAM)
def test_unixgram_accept_skips_a_connector_that_gave_up(transport, tmp_path):
    with listen(address_for(transport, tmp_path)) as lst:
        with pytest.raises(TimeoutError):
            connect(lst.address, timeout=0.05)  # its hello stays queued, its lifeline closed
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("s", lst.accept(timeout=30)))
        t.start()
        with connect(lst.address, timeout=30) as c:
            t.join()
            with out["s"] as s:
                c.send_bytes(b"the live one")
                assert s.recv_bytes(timeout=10) == b"the live one"
