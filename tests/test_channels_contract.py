"""One contract, every transport: the same tests run over pipes, FIFOs, UNIX
stream and seqpacket sockets (path and abstract), TCP and POSIX message
queues, in-process and across real processes."""
import hashlib
import pickle
import selectors

import pytest

from _channel_support import EXCLUDED, MESSAGE_TRANSPORTS, channel_pair, peer_process, transports_for
from _channel_support import no_leftovers  # noqa: F401  (fixture)
from ringipc.channels.channel import BaseChannel, Channel
from ringipc.errors import BufferTooShort, ChannelClosed, FrameError, MessageTooLarge

pytestmark = pytest.mark.usefixtures("no_leftovers")
transports = pytest.mark.parametrize("transport", MESSAGE_TRANSPORTS)
with_fileno = pytest.mark.parametrize("transport", transports_for("fileno"))

STOP = b"\xffSTOP"


def payload(i: int, size: int) -> bytes:
    return hashlib.shake_256(i.to_bytes(8, "little")).digest(size) if size else b""


def sizes_for(ch) -> list:
    """Message sizes to try: empty, tiny, around the pipe buffer, and large
    (up to 4 MiB) where the transport can carry them."""
    sizes = [0, 1, 7, 8, 9, 100, 4095, 4096, 65535, 65536, 65537, 1 << 20, 4 << 20]
    return [s for s in sizes if ch.transport_limit is None or s <= ch.transport_limit]


def echo(ch):
    """Peer process: send back (digest, length) of each message until STOP."""
    while True:
        data = ch.recv_bytes()
        if data == STOP:
            return
        ch.send((hashlib.sha256(data).hexdigest(), len(data)))
        ch.send_bytes(data)


@transports
def test_satisfies_protocol(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        assert isinstance(a, Channel) and isinstance(b, Channel)
        assert isinstance(a, BaseChannel)
        if (transport, "fileno") not in EXCLUDED:
            assert isinstance(a.fileno(), int)


@transports
def test_ordered_exact_content_across_processes(transport, tmp_path):
    with peer_process(transport, tmp_path, echo) as (ch, proc):
        sizes = sizes_for(ch)
        for i, size in enumerate(sizes * 2):
            data = payload(i, size)
            ch.send_bytes(data)
            assert ch.recv(timeout=60) == (hashlib.sha256(data).hexdigest(), size), f"message {i}"
            back = ch.recv_bytes(timeout=60)
            assert back == data, f"message {i} of {size} bytes came back changed"
        ch.send_bytes(STOP)
        proc.join(60)
        assert proc.exitcode == 0


@transports
def test_objects_round_trip(transport, tmp_path):
    objs = [None, 0, -1, 2**70, "é", b"\x00" * 3, [1, (2, 3)], {"k": {1, 2}}, bytearray(b"x" * 30000)]
    with channel_pair(transport, tmp_path) as (a, b):
        limit = a.transport_limit
        for obj in objs:
            if limit is not None and len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)) > limit:
                continue
            b.send(obj)
            assert a.recv(timeout=10) == obj
            a.send(obj)
            assert b.recv(timeout=10) == obj


@transports
def test_many_small_messages_keep_order(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        for i in range(5):  # fewer than the smallest queue depth (mq: 10)
            b.send_bytes(i.to_bytes(4, "little") * i)
        for i in range(5):
            assert a.recv_bytes(timeout=10) == i.to_bytes(4, "little") * i


@transports
def test_eof_when_peer_closes(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        b.send_bytes(b"last")
        b.close()
        assert a.poll(10)
        assert a.recv_bytes(timeout=10) == b"last"
        with pytest.raises(EOFError):
            a.recv_bytes(timeout=10)


@transports
def test_eof_when_peer_process_exits(transport, tmp_path):
    with peer_process(transport, tmp_path, lambda ch: ch.send("bye")) as (ch, proc):
        assert ch.recv(timeout=60) == "bye"
        with pytest.raises(EOFError):
            ch.recv(timeout=60)


@transports
def test_timeout_and_poll(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        assert a.poll() is False
        assert a.poll(0.01) is False
        with pytest.raises(TimeoutError):
            a.recv_bytes(timeout=0.01)
        with pytest.raises(TimeoutError):
            a.recv(timeout=0)
        b.send_bytes(b"ready")
        assert a.poll(None) is True
        assert a.recv_bytes(timeout=0) == b"ready"


@with_fileno
def test_fileno_works_with_selectors(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b), selectors.DefaultSelector() as sel:
        sel.register(a.fileno(), selectors.EVENT_READ)
        assert sel.select(0) == []
        b.send_bytes(b"wake")
        assert len(sel.select(10)) == 1
        assert a.recv_bytes() == b"wake"


@with_fileno
def test_fileno_readable_after_poll_until_received(transport, tmp_path):
    """poll() may take a message off the kernel (a queue has no peek); the
    descriptor must still report it until it is received."""
    with channel_pair(transport, tmp_path) as (a, b), selectors.DefaultSelector() as sel:
        b.send_bytes(b"held")
        assert a.poll(10)
        sel.register(a.fileno(), selectors.EVENT_READ)
        assert sel.select(0), "a message poll() saw is not visible on fileno()"
        assert a.recv_bytes(timeout=0) == b"held"
        assert sel.select(0) == []


@transports
def test_recv_bytes_into(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        buf = bytearray(16)
        b.send_bytes(b"abcdef")
        assert a.recv_bytes_into(buf, 4, timeout=10) == 6
        assert buf[4:10] == b"abcdef"
        b.send_bytes(b"z" * 40)
        with pytest.raises(BufferTooShort) as info:
            a.recv_bytes_into(buf, timeout=10)
        assert info.value.args[0] == b"z" * 40
        b.send_bytes(memoryview(b"0123456789"), 2, 3)
        assert a.recv_bytes(timeout=10) == b"234"


@transports
def test_recv_bytes_into_a_read_only_buffer_is_refused_first(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        b.send_bytes(b"kept")
        for timeout in (None, 10):
            with pytest.raises(TypeError):
                a.recv_bytes_into(b"read-only", timeout=timeout)
        assert a.recv_bytes(timeout=10) == b"kept"  # refused before anything was taken


@transports
def test_maxlength_is_refused(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        b.send_bytes(b"x" * 100)
        with pytest.raises(FrameError):
            a.recv_bytes(maxlength=10, timeout=10)


@transports
def test_closed_channel_raises(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        a.close()
        a.close()  # idempotent
        assert a.closed
        for call in (lambda: a.send(1), lambda: a.recv(), lambda: a.poll(), lambda: a.fileno()):
            with pytest.raises(ChannelClosed):
                call()
        with pytest.raises(ValueError):  # ChannelClosed is also what stdlib users catch
            a.send_bytes(b"")


@pytest.mark.parametrize("transport", ["unixpacket", "mq"])
def test_message_over_native_limit_is_refused_before_sending(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        with pytest.raises(MessageTooLarge):
            b.send_bytes(b"\0" * (b.transport_limit + 1))
        b.send_bytes(b"\1" * b.transport_limit)  # the limit itself still fits
        assert a.recv_bytes(timeout=10) == b"\1" * b.transport_limit


@with_fileno
def test_asyncio_can_wait_on_fileno(transport, tmp_path):
    import asyncio

    async def wait_for_message(ch):
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_reader(ch.fileno(), lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, 30)
        finally:
            loop.remove_reader(ch.fileno())
        return ch.recv_bytes(timeout=0)

    with channel_pair(transport, tmp_path) as (a, b):
        b.send_bytes(b"async")
        assert asyncio.run(wait_for_message(a)) == b"async"


@with_fileno
def test_multiprocessing_connection_wait(transport, tmp_path):
    from multiprocessing.connection import wait

    with channel_pair(transport, tmp_path) as (a, b):
        assert wait([a], timeout=0) == []
        b.send(1)
        assert wait([a], timeout=30) == [a]


def _echo_once(ch):
    ch.send_bytes(ch.recv_bytes())
    ch.close()


def test_pipe_end_passes_to_a_spawned_child():
    import multiprocessing

    from ringipc.channels.transports.pipe import pipe_pair

    mine, theirs = pipe_pair()
    proc = multiprocessing.get_context("spawn").Process(target=_echo_once, args=(theirs,))
    proc.start()
    theirs.close()
    try:
        mine.send_bytes(b"through spawn")
        assert mine.recv_bytes(timeout=60) == b"through spawn"
    finally:
        proc.join(60)
        mine.close()
    assert proc.exitcode == 0


@pytest.mark.parametrize("transport", ["unixpacket", "mq"])
def test_native_boundary_channels_survive_a_refused_message(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        b.send_bytes(b"x" * 100)
        b.send_bytes(b"after")
        with pytest.raises(FrameError):
            a.recv_bytes(maxlength=10, timeout=10)
        assert a.recv_bytes(timeout=10) == b"after"


@pytest.mark.parametrize("transport", transports_for("fileno", base=[t for t in MESSAGE_TRANSPORTS if t != "pipe"]))
def test_listener_fileno_signals_a_waiting_peer(transport, tmp_path):
    import threading

    from _channel_support import address_for, transport_opts
    from ringipc.channels.address import connect, listen

    opts = transport_opts(transport)
    with listen(address_for(transport, tmp_path), **opts) as lst, selectors.DefaultSelector() as sel:
        sel.register(lst.fileno(), selectors.EVENT_READ)
        assert sel.select(0) == []
        got = {}
        t = threading.Thread(target=lambda: got.setdefault("c", connect(lst.address, timeout=30, **opts)))
        t.start()
        assert len(sel.select(30)) == 1
        with lst.accept(timeout=30) as server:
            t.join()
            with got["c"] as client:
                client.send("seen")
                assert server.recv(timeout=10) == "seen"


@pytest.mark.parametrize("transport", transports_for("fileno", "lossless"))
def test_asyncio_one_message_per_readiness_misses_none(transport, tmp_path):
    """A reader that takes one message each time the loop says fileno() is
    readable must still see every message, also those a transport read ahead
    or took off the kernel together: readiness may not go dark early."""
    import asyncio
    import threading

    count = 2000

    async def consume(ch):
        loop = asyncio.get_running_loop()
        got, done = [], asyncio.Event()

        def on_ready():
            got.append(ch.recv_bytes(timeout=30))  # one only: the rest must re-arm readiness
            if len(got) == count:
                done.set()

        loop.add_reader(ch.fileno(), on_ready)
        try:
            await asyncio.wait_for(done.wait(), 120)
        finally:
            loop.remove_reader(ch.fileno())
        return got

    with channel_pair(transport, tmp_path) as (a, b):
        sender = threading.Thread(target=lambda: [b.send_bytes(b"%d" % i) for i in range(count)])
        sender.start()
        try:
            got = asyncio.run(consume(a))
        finally:
            sender.join(60)
    assert got == [b"%d" % i for i in range(count)]
