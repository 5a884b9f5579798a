"""unixpacket:// receives each message with one system call into a buffer one
byte over the limit; these pin down the edges that design creates: the
limit itself, refused packets, messages split between the caller's buffer
and the channel's own, and the packet header."""
import pytest

from _channel_support import channel_pair
from _channel_support import no_leftovers  # noqa: F401  (fixture)
from ringipc.errors import BufferTooShort, ChannelClosed, FrameError

pytestmark = pytest.mark.usefixtures("no_leftovers")

LIMIT = 100


def body(size: int, fill: int = 0x5A) -> bytes:
    return bytes((fill + i) % 256 for i in range(size))


@pytest.fixture
def limited(tmp_path):
    with channel_pair("unixpacket", tmp_path, max_message_size=LIMIT) as pair:
        yield pair


# recv_bytes() with no timeout runs in C (_packet_fast.pyx); with one, in Python.
receive_paths = pytest.mark.parametrize("timeout", [None, 10], ids=["fast-path", "general-path"])


@receive_paths
def test_the_limit_fits_one_more_is_refused_and_the_next_arrives(limited, timeout):
    a, b = limited
    for size in (LIMIT, LIMIT + 1, LIMIT + 4096, 3, 0):
        b.send_bytes(body(size))
    assert a.recv_bytes(timeout=timeout) == body(LIMIT)
    for _ in range(2):
        with pytest.raises(FrameError, match="over the 100-byte limit"):
            a.recv_bytes(timeout=timeout)
    assert a.recv_bytes(timeout=timeout) == body(3)
    assert a.recv_bytes(timeout=timeout) == b""
    assert not a.closed
    b.close()
    with pytest.raises(EOFError):
        a.recv_bytes(timeout=timeout)


@receive_paths
def test_assigning_max_message_size_moves_the_limit(tmp_path, timeout):
    with channel_pair("unixpacket", tmp_path) as (a, b):
        a.max_message_size = 10
        b.send_bytes(body(11))
        b.send_bytes(body(10))
        with pytest.raises(FrameError, match="over the 10-byte limit"):
            a.recv_bytes(timeout=timeout)
        assert a.recv_bytes(timeout=timeout) == body(10)
        a.max_message_size = None  # back to the transport's own limit
        b.send_bytes(body(70_000))
        assert a.recv_bytes(timeout=timeout) == body(70_000)


@receive_paths
@pytest.mark.parametrize("room", [10, LIMIT, LIMIT + 1, 4 * LIMIT])
def test_recv_bytes_into_refuses_over_the_limit_whatever_the_buffer(limited, room, timeout):
    a, b = limited
    buf = bytearray(room)
    b.send_bytes(body(LIMIT + 1))
    b.send_bytes(body(7, 1))
    with pytest.raises(FrameError):
        a.recv_bytes_into(buf, timeout=timeout)
    assert a.recv_bytes_into(buf, timeout=timeout) == 7
    assert buf[:7] == body(7, 1)


@receive_paths
@pytest.mark.parametrize("offset", [0, 24])
def test_recv_bytes_into_too_short_returns_the_whole_message(tmp_path, offset, timeout):
    big = body(300_000)
    with channel_pair("unixpacket", tmp_path) as (a, b):
        buf = bytearray(1024)
        b.send_bytes(big)
        b.send_bytes(b"fits")
        with pytest.raises(BufferTooShort) as info:
            a.recv_bytes_into(buf, offset, timeout=timeout)
        assert info.value.args[0] == big
        assert a.recv_bytes_into(buf, offset, timeout=timeout) == 4
        assert buf[offset : offset + 4] == b"fits"
        with pytest.raises(TypeError):
            a.recv_bytes_into(b"read-only", timeout=timeout)


def test_per_call_maxlength_then_bigger_messages(tmp_path):
    with channel_pair("unixpacket", tmp_path) as (a, b):
        for msg in (b"small", b"x" * 11, body(1 << 20), b""):
            b.send_bytes(msg)
        assert a.recv_bytes(maxlength=10) == b"small"
        with pytest.raises(FrameError):
            a.recv_bytes(maxlength=10)
        assert a.recv_bytes() == body(1 << 20)
        assert a.recv_bytes(maxlength=0) == b""


def test_received_messages_do_not_share_memory(tmp_path):
    with channel_pair("unixpacket", tmp_path) as (a, b):
        b.send_bytes(b"first")
        b.send_bytes(b"SECOND")
        first = a.recv_bytes()
        assert a.recv_bytes() == b"SECOND"
        assert first == b"first" and type(first) is bytes


@receive_paths
def test_recv_bytes_into_empty_message_then_eof(tmp_path, timeout):
    with channel_pair("unixpacket", tmp_path) as (a, b):
        buf = bytearray(b"keep")
        b.send_bytes(b"")
        assert a.recv_bytes_into(buf, timeout=timeout) == 0
        assert buf == b"keep"
        with pytest.raises(TimeoutError):
            a.recv_bytes_into(buf, timeout=0.01)
        b.close()
        with pytest.raises(EOFError):
            a.recv_bytes_into(buf, timeout=timeout)


@pytest.mark.parametrize("call", ["into", "fast", "general"])
@pytest.mark.parametrize("packet", [
    b"\x02" + bytes(15) + b"another tag",
    b"\x01" + b"\x07" * 15 + b"reserved bytes not zero",
    b"\x01short",  # a runt: shorter than a header
], ids=["tag", "reserved", "runt"])
def test_a_packet_without_our_header_closes_the_channel(tmp_path, call, packet):
    with channel_pair("unixpacket", tmp_path) as (a, b):
        b._sock.send(packet)
        with pytest.raises(FrameError, match="without ringipc's header"):
            if call == "into":
                a.recv_bytes_into(bytearray(64))
            else:
                a.recv_bytes(timeout=None if call == "fast" else 10)
        assert a.closed
        with pytest.raises(ChannelClosed):
            a.recv_bytes()  # the C path is off once closed


def test_send_after_close_takes_the_general_path(tmp_path):
    with channel_pair("unixpacket", tmp_path) as (a, b):
        with pytest.raises(TypeError):
            b.send_bytes("not bytes")  # anything but bytes goes through BaseChannel's checks
        b.send_bytes(memoryview(b"0123456789"), 2, 3)  # offset/size: the general path
        assert a.recv_bytes() == b"234"
        b.close()
        with pytest.raises(ChannelClosed):
            b.send_bytes(b"late")


@pytest.mark.parametrize("kind", [bytes, memoryview], ids=["fast-path", "general-path"])
def test_the_largest_message_switches_to_the_full_send_buffer(tmp_path, kind):
    """Channels work with a modest send buffer and take the full one (which
    sets transport_limit) when a message needs it: nothing is refused that
    the limit allows."""
    with channel_pair("unixpacket", tmp_path) as (a, b):
        big = body(b.transport_limit)
        b.send_bytes(kind(big))
        assert b._send_buffer_full
        assert a.recv_bytes() == big
        b.send_bytes(b"and after")
        assert a.recv_bytes() == b"and after"
