"""Bad input from the wire and peers that die: every stream transport must
answer with a documented exception, never a hang or an unbounded allocation."""
import contextlib
import os
import signal

import pytest

from _channel_support import STREAM_TRANSPORTS, channel_pair, peer_process
from _channel_support import no_leftovers  # noqa: F401  (fixture)
from ringipc.errors import ChannelClosed, FrameError
from ringipc.channels.framing import HEADER, HEADER_FIELDS

pytestmark = pytest.mark.usefixtures("no_leftovers")
streams = pytest.mark.parametrize("transport", STREAM_TRANSPORTS)

# Far more than any socket or pipe buffer holds, so the sender is certainly
# blocked inside send_bytes, with half a frame written, when it is killed.
STUCK_SIZE = 64 << 20


def raw_write(ch, data: bytes) -> None:
    """Put bytes on the wire behind the framing layer's back."""
    fd = ch._wfd
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def alarm_handler(handler):
    """``handler`` on SIGALRM for the block (armed with setitimer inside it);
    afterwards the timer is disarmed and the old handler is back."""
    old = signal.signal(signal.SIGALRM, handler)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def send_huge(ch):
    ch.send_bytes(bytes(STUCK_SIZE))


@streams
def test_peer_sigkilled_mid_frame(transport, tmp_path):
    with peer_process(transport, tmp_path, send_huge) as (ch, proc):
        assert ch.poll(60), "the peer never started writing"
        proc.kill()
        proc.join(60)
        with pytest.raises(ConnectionResetError):
            ch.recv_bytes(timeout=60)


@streams
def test_oversize_header_rejected_before_allocation(transport, tmp_path):
    with channel_pair(transport, tmp_path, max_message_size=1024) as (a, b):
        raw_write(b, HEADER.pack(1 << 62))  # would be a MemoryError if anything were allocated
        with pytest.raises(FrameError):
            a.recv_bytes(timeout=10)
        assert a.closed  # the stream cannot be trusted any more
        with pytest.raises(ChannelClosed):
            a.recv_bytes(timeout=10)


@streams
def test_header_with_reserved_bytes_set_is_refused(transport, tmp_path):
    """A peer that does not speak ringipc's framing is caught at its first frame."""
    with channel_pair(transport, tmp_path) as (a, b):
        raw_write(b, HEADER_FIELDS.pack(5, 1) + b"hello")
        with pytest.raises(FrameError, match="reserved"):
            a.recv_bytes(timeout=10)
        assert a.closed


@streams
def test_header_one_over_limit_rejected(transport, tmp_path):
    with channel_pair(transport, tmp_path, max_message_size=1024) as (a, b):
        b.send_bytes(b"k" * 1024)
        assert a.recv_bytes(timeout=10) == b"k" * 1024
        raw_write(b, HEADER.pack(1025))
        with pytest.raises(FrameError):
            a.recv_bytes(timeout=10)


@streams
@pytest.mark.parametrize("cut", ["header", "body"])
def test_truncated_frame_then_close(transport, tmp_path, cut):
    with channel_pair(transport, tmp_path) as (a, b):
        raw_write(b, HEADER.pack(100)[:3] if cut == "header" else HEADER.pack(100) + b"x" * 10)
        b.close()
        with pytest.raises(ConnectionResetError):
            a.recv_bytes(timeout=10)


@streams
def test_timeout_mid_frame_resumes(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        frame = HEADER.pack(10) + b"0123456789"
        raw_write(b, frame[:5])
        with pytest.raises(TimeoutError):
            a.recv_bytes(timeout=0.01)
        raw_write(b, frame[5:12])
        buf = bytearray(10)
        with pytest.raises(TimeoutError):
            a.recv_bytes_into(buf, timeout=0.01)
        raw_write(b, frame[12:])
        assert a.recv_bytes_into(buf, timeout=10) == 10
        assert buf == b"0123456789"
        b.send_bytes(b"next")
        assert a.recv_bytes(timeout=10) == b"next"


@streams
def test_send_to_closed_peer_raises(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        a.close()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(64):  # a socket may take one write to learn of the close
                b.send_bytes(bytes(1 << 20))


def test_mq_eof_marker_only_on_clean_close(tmp_path):
    """A message queue has no peer to lose: a clean close is seen as EOF, and the
    documented answer to a dead peer is the timeout."""
    with channel_pair("mq", tmp_path) as (a, b):
        with pytest.raises(TimeoutError):
            a.recv_bytes(timeout=0.01)
        b.close()
        with pytest.raises(EOFError):
            a.recv_bytes(timeout=10)


@pytest.mark.parametrize("transport", ["pipe", "unix", "unixpacket", "mq", "unixgram", "udp"])
def test_signal_during_blocking_recv(transport, tmp_path):
    """A signal handler runs while recv waits, the wait then goes on to its own
    deadline, and an exception from the handler (Ctrl-C) comes out of recv."""
    fired = []

    def handler(signum, frame):
        fired.append(signum)
        if len(fired) == 2:
            raise KeyboardInterrupt

    with alarm_handler(handler):
        with channel_pair(transport, tmp_path) as (a, b):
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            with pytest.raises(TimeoutError):
                a.recv_bytes(timeout=0.2)
            assert fired == [signal.SIGALRM]
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            with pytest.raises(KeyboardInterrupt):
                a.recv_bytes()  # no timeout: only the handler can end this wait
            b.send_bytes(b"still aligned")
            assert a.recv_bytes(timeout=10) == b"still aligned"


@pytest.mark.parametrize("transport", ["pipe", "unix", "tcp"])
def test_send_interrupted_mid_frame_closes_the_channel(transport, tmp_path):
    """A signal handler that raises while a large send is blocked leaves a torn
    frame: the sender's channel closes, and the receiver sees a reset, not a
    misframed stream."""
    with alarm_handler(_interrupt):
        with channel_pair(transport, tmp_path) as (a, b):
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            with pytest.raises(KeyboardInterrupt):
                b.send_bytes(bytes(STUCK_SIZE))  # nobody reads: blocks until the signal
            signal.setitimer(signal.ITIMER_REAL, 0)
            assert b.closed
            with pytest.raises(ConnectionResetError):
                a.recv_bytes(timeout=60)


def test_packet_send_interrupted_while_blocked_sends_nothing(tmp_path):
    """A seqpacket send is all or nothing: Ctrl-C while it waits for room
    leaves every earlier message whole and the channel usable."""
    with alarm_handler(_interrupt):
        with channel_pair("unixpacket", tmp_path) as (a, b):
            sent = 0
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(KeyboardInterrupt):
                while True:  # nobody reads: fills the socket, then blocks until the signal
                    b.send_bytes(sent.to_bytes(8, "little") * 512)
                    sent += 1
            signal.setitimer(signal.ITIMER_REAL, 0)
            assert not b.closed
            for seq in range(sent):
                assert a.recv_bytes(timeout=10) == seq.to_bytes(8, "little") * 512
            assert not a.poll(0), "the interrupted message arrived (in part?)"
            b.send_bytes(b"after")
            assert a.recv_bytes(timeout=10) == b"after"


@pytest.mark.parametrize("transport", ["pipe", "unix"])
def test_interrupt_while_waiting_mid_frame_resumes(transport, tmp_path):
    """Ctrl-C while a receive waits for the rest of a frame consumes nothing:
    the next receive completes the same frame, into a different buffer."""
    with alarm_handler(_interrupt):
        with channel_pair(transport, tmp_path) as (a, b):
            frame = HEADER.pack(10) + b"0123456789"
            raw_write(b, frame[:12])
            signal.setitimer(signal.ITIMER_REAL, 0.02)
            with pytest.raises(KeyboardInterrupt):
                a.recv_bytes_into(bytearray(10))
            raw_write(b, frame[12:])
            other = bytearray(10)
            assert a.recv_bytes_into(other, timeout=10) == 10
            assert other == b"0123456789"


@pytest.mark.parametrize("transport", ["pipe", "tcp"])
def test_interrupt_right_after_a_read_marks_the_stream_lost(transport, tmp_path, monkeypatch):
    """A handler that runs just after readv returned, before the count is
    stored, must not leave a silently misaligned stream behind."""
    import ringipc.channels.framing as framing

    real_readv = os.readv

    def readv_then_interrupt(fd, buffers):
        real_readv(fd, buffers)
        raise KeyboardInterrupt

    with channel_pair(transport, tmp_path) as (a, b):
        b.send_bytes(b"first")
        b.send_bytes(b"second")
        assert a.poll(10)
        monkeypatch.setattr(framing.os, "readv", readv_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            a.recv_bytes()
        monkeypatch.setattr(framing.os, "readv", real_readv)
        with pytest.raises(FrameError, match="position is lost"):
            a.recv_bytes(timeout=10)
