"""Objects with large buffers through every channel transport: Channel.send
pickles with protocol 5 out of band (ringipc/mp/oob.py), streams and packets
gather the frame's pieces, the others join it once, and the receiver
rebuilds the object in its receive buffer.  Content is checked by hash."""
import hashlib
import os
import pickle
import signal
import struct
import threading

import pytest

from _async_support import run  # noqa: F401  (fixture)
from _channel_support import MESSAGE_TRANSPORTS, channel_pair, peer_process
from _channel_support import no_leftovers  # noqa: F401  (fixture)
from ringipc import asyncio as ra
from ringipc.channels.channel import encode_object
from ringipc.errors import CorruptSegment, FrameError, MessageTooLarge
from ringipc.mp import oob

pytestmark = pytest.mark.usefixtures("no_leftovers")

TIMEOUT = 60
# Transports whose frames the tests below send both ways between the two APIs.
ASYNC_TRANSPORTS = ["pipe", "unix", "tcp", "unixpacket", "unixgram", "shm"]


def _sha(buf):
    return hashlib.sha256(memoryview(buf).cast("B") if memoryview(buf).contiguous else bytes(buf)).hexdigest()


def digest(obj):
    """What must survive the trip: types, shapes and content (hashed)."""
    kind = type(obj)
    if kind.__name__ == "ndarray":
        import numpy
        return ("ndarray", obj.dtype.str, obj.shape, hashlib.sha256(numpy.ascontiguousarray(obj).tobytes()).hexdigest())
    if kind is bytes:
        return ("bytes", _sha(obj))
    if kind is bytearray:
        return ("buffer", _sha(obj))
    if kind in (memoryview, pickle.PickleBuffer):
        # A bare PickleBuffer comes back as a buffer: a bytearray where the
        # frame was copied out, a view of the receive buffer where it was not.
        return ("buffer", _sha(memoryview(obj).tobytes()))
    if kind is dict:
        return {k: digest(v) for k, v in obj.items()}
    if kind in (list, tuple):
        return [digest(v) for v in obj]
    return obj


def plain_cases():
    big = bytearray(os.urandom(1 << 20))
    raw = os.urandom(300_000)
    return {
        "bytes": os.urandom((1 << 20) + 3),
        "bytes-recycled": os.urandom(3 << 20),  # a receive buffer from core/_recycle
        "bytearray": bytearray(os.urandom(200_000)),
        "small-bytearray": bytearray(os.urandom(1000)),
        "memoryview-slice": pickle.PickleBuffer(memoryview(big)[1001:1001 + 300_000]),
        "readonly-slice": pickle.PickleBuffer(memoryview(raw)[7:250_007]),
        "many-buffers": [pickle.PickleBuffer(bytearray(os.urandom(70_000))) for _ in range(40)],
        "mixed": {"small": list(range(50)), "big": raw, "text": "x" * 100, "n": 7},
        "small": {"a": 1, "b": [b"x" * 10]},
    }


def array_cases(numpy):
    rng = numpy.random.default_rng(13)
    return {
        "float64": rng.random(200_000),
        "int16": rng.integers(-30_000, 30_000, 300_000, dtype="int16"),
        "complex128": rng.random(50_000) + 1j * rng.random(50_000),
        "bool": rng.random(400_000) > 0.5,
        "uint8-recycled": rng.integers(0, 255, 3 << 20, dtype="uint8"),
        "fortran": numpy.asfortranarray(rng.random((400, 300)).astype("float32")),
        "non-contiguous": rng.random((600, 400))[::2, ::3],
        "zero-d": numpy.array(3.25),
        "empty": numpy.zeros((0, 5)),
        "structured": numpy.zeros(20_000, dtype=[("a", "i4"), ("b", "f8")]),
        "datetime": numpy.arange(100_000).astype("datetime64[s]"),
        "mixed": {"a": rng.random(100_000), "b": [rng.random(10), b"y" * 100_000], "c": "text"},
    }


def check_arrays_writable(obj):
    if type(obj).__name__ == "ndarray":
        assert obj.flags.writeable
        if obj.size:
            obj.reshape(-1)[:1] = obj.reshape(-1)[-1:]
    elif type(obj) is dict:
        for v in obj.values():
            check_arrays_writable(v)
    elif type(obj) in (list, tuple):
        for v in obj:
            check_arrays_writable(v)


def trip(tx, rx, obj):
    """Send ``obj`` on ``tx`` from a thread and receive it on ``rx``."""
    errors = []

    def send():
        try:
            tx.send(obj)
        except BaseException as exc:  # reported below
            errors.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        got = rx.recv(timeout=TIMEOUT)
    finally:
        sender.join(TIMEOUT)
    assert not errors, errors
    return got


def round_trip_all(transport, tmp_path, cases):
    with channel_pair(transport, tmp_path) as (a, b):
        for name, obj in cases.items():
            encoded = oob.encode(obj)
            size = encoded.size if type(encoded) is oob.Frame else len(encoded)
            if b.transport_limit is not None and size > b.transport_limit:
                with pytest.raises(MessageTooLarge):  # refused before anything is sent
                    b.send(obj)
                continue
            got = trip(b, a, obj)
            assert digest(got) == digest(obj), name
            assert type(got) is type(obj) or type(obj) is pickle.PickleBuffer, name
            if type(obj).__name__ == "ndarray" and obj.ndim > 1 and obj.nbytes >= oob.OOB_MIN_BUFFER:
                assert got.flags.f_contiguous == obj.flags.f_contiguous, name
            check_arrays_writable(got)
        assert trip(a, b, "still in step") == "still in step"


@pytest.mark.parametrize("transport", MESSAGE_TRANSPORTS)
def test_buffers_round_trip(transport, tmp_path):
    round_trip_all(transport, tmp_path, plain_cases())


@pytest.mark.parametrize("transport", ["pipe", "unix", "unixpacket", "shm"])
def test_large_bytes_and_bytearrays_go_out_of_band(transport, tmp_path, monkeypatch):
    # CPython's pickler writes both in-band whatever the buffer_callback: send() frames them itself.
    for kind in (bytes, bytearray):
        assert type(encode_object(kind(200_000))) is oob.Frame
        assert type(encode_object(kind(1000))) is bytes
    with channel_pair(transport, tmp_path) as (a, b):
        frames = []
        send_frame = b._send_frame
        monkeypatch.setattr(b, "_send_frame", lambda frame: frames.append(frame.flags) or send_frame(frame))
        for kind, flag in ((bytes, oob.RAW_BYTES), (bytearray, oob.RAW_BYTEARRAY)):
            data = kind(os.urandom(200_000))
            got = trip(b, a, data)
            assert type(got) is kind and got == data
            assert frames.pop() == flag
        assert trip(b, a, bytearray(1000)) == bytearray(1000) and not frames


@pytest.mark.parametrize("transport", MESSAGE_TRANSPORTS)
def test_arrays_round_trip(transport, tmp_path):
    numpy = pytest.importorskip("numpy", reason="the array cases need NumPy (in the test extra)")
    round_trip_all(transport, tmp_path, array_cases(numpy))


@pytest.mark.parametrize("transport", MESSAGE_TRANSPORTS)
def test_small_frames_on_every_transport(transport, tmp_path):
    # Frames that fit even an 8 KiB message queue or a datagram: the joined
    # path of mq://, sysvmq:// and udp:// carries them like the others.
    obj = {"a": pickle.PickleBuffer(bytearray(os.urandom(3000))), "b": os.urandom(2000), "c": 1}
    frame = oob.encode(obj, min_buffer=1024)
    assert type(frame) is oob.Frame
    with channel_pair(transport, tmp_path) as (a, b):
        b._send_frame(b._checked_frame(frame))
        assert digest(a.recv(timeout=TIMEOUT)) == digest(obj)


@pytest.mark.parametrize("transport", MESSAGE_TRANSPORTS)
def test_small_objects_keep_their_plain_pickle(transport, tmp_path):
    objs = [b"abc", b"x" * 1000, "text", 12, {"a": [1, 2.5, None]}, bytearray(5000), (b"y" * 60_000,)]
    with channel_pair(transport, tmp_path) as (a, b):
        for obj in objs:
            expected = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
            if b.transport_limit is not None and len(expected) > b.transport_limit:
                continue
            b.send(obj)
            assert a.recv_bytes(timeout=TIMEOUT) == expected


def test_frame_pieces_are_the_frame():
    numpy = pytest.importorskip("numpy", reason="an array case needs NumPy (in the test extra)")
    for obj in [os.urandom(1 << 20), numpy.ones((300, 300), order="F"), plain_cases()["many-buffers"],
                {"x": pickle.PickleBuffer(bytearray(70_000)), "y": "z" * 5000}]:
        frame = oob.encode(obj)
        assert b"".join(bytes(p) for p in frame.pieces()) == frame.tobytes()


@pytest.mark.parametrize("transport", ASYNC_TRANSPORTS)
def test_async_sender_sync_receiver(run, transport, tmp_path):  # noqa: F811
    numpy = pytest.importorskip("numpy", reason="the array cases need NumPy (in the test extra)")
    cases = list(array_cases(numpy).values()) + list(plain_cases().values())
    with channel_pair(transport, tmp_path) as (a, b):
        got = []
        receiver = threading.Thread(target=lambda: got.extend(a.recv(timeout=TIMEOUT) for _ in cases))
        receiver.start()

        async def send_all():
            sender = ra.AsyncChannel(b)
            for obj in cases:
                await sender.send(obj)

        try:
            run(send_all())
        finally:
            receiver.join(TIMEOUT)
        assert [digest(g) for g in got] == [digest(c) for c in cases]


@pytest.mark.parametrize("transport", ASYNC_TRANSPORTS)
def test_sync_sender_async_receiver(run, transport, tmp_path):  # noqa: F811
    numpy = pytest.importorskip("numpy", reason="the array cases need NumPy (in the test extra)")
    cases = list(array_cases(numpy).values()) + list(plain_cases().values())
    with channel_pair(transport, tmp_path) as (a, b):
        sender = threading.Thread(target=lambda: [b.send(obj) for obj in cases])
        sender.start()

        async def recv_all():
            receiver = ra.AsyncChannel(a)
            return [await receiver.recv() for _ in cases]

        try:
            got = run(recv_all())
        finally:
            sender.join(TIMEOUT)
        assert [digest(g) for g in got] == [digest(c) for c in cases]
        for g in got:
            check_arrays_writable(g)


def corrupt_frames(sizes, min_buffer=oob.OOB_MIN_BUFFER):
    good = oob.encode([pickle.PickleBuffer(bytearray(os.urandom(n))) for n in sizes], min_buffer=min_buffer)
    whole = good.tobytes()
    huge_length = bytearray(whole)
    struct.pack_into("<Q", huge_length, 24, 1 << 62)  # the first buffer's length
    wrapped = bytearray(whole)
    struct.pack_into("<Q", wrapped, 24, (1 << 64) - 64)  # a sum that would wrap
    long_pickle = bytearray(whole)
    struct.pack_into("<Q", long_pickle, 16, len(whole) * 2)
    many = bytearray(whole)
    struct.pack_into("<I", many, 8, 1 << 20)  # buffer count
    return [bytes(huge_length), bytes(wrapped), bytes(long_pickle), bytes(many), whole[:-64], whole + bytes(64),
            oob.MAGIC + bytes(4)]


@pytest.mark.parametrize("transport", MESSAGE_TRANSPORTS)
def test_corrupt_frames_are_refused(transport, tmp_path):
    # Small frames fit every transport; on those without a small limit, large
    # ones too (a stream's receive buffer is then a recycled block).
    frames = corrupt_frames([2000, 3000], min_buffer=1024)
    if transport not in ("mq", "sysvmq", "udp"):
        frames += corrupt_frames([70_000, 2 << 20])
    with channel_pair(transport, tmp_path) as (a, b):
        for data in frames:
            sender = threading.Thread(target=b.send_bytes, args=(data,))
            sender.start()
            try:
                with pytest.raises(CorruptSegment):
                    a.recv(timeout=TIMEOUT)
            finally:
                sender.join(TIMEOUT)
        assert trip(b, a, "still in step") == "still in step"


def test_oversize_frame_on_a_stream_is_a_frame_error(tmp_path):
    with channel_pair("unix", tmp_path, max_message_size=200_000) as (a, b):
        errors = []

        def send():
            try:
                b.send(pickle.PickleBuffer(bytearray(1 << 20)))
            except (BrokenPipeError, ConnectionResetError) as exc:  # the receiver dropped the channel
                errors.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        try:
            with pytest.raises(FrameError, match="over the 200000-byte limit"):
                a.recv(timeout=TIMEOUT)
        finally:
            a.close()  # unblocks a sender still writing
            sender.join(TIMEOUT)
        assert not sender.is_alive()


@pytest.mark.parametrize("transport", ["mq", "udp", "sysvmq"])
def test_oversize_frame_on_a_message_transport_is_refused(transport, tmp_path):
    with channel_pair(transport, tmp_path) as (a, b):
        with pytest.raises(MessageTooLarge):
            b.send(os.urandom(1 << 20))
        b.send("after")
        assert a.recv(timeout=TIMEOUT) == "after"


def seeded_objects(count):
    """The same objects in any process: arrays and buffers of several sizes, seeded."""
    import random
    rnd = random.Random(1313)
    out = []
    for i in range(count):
        n = rnd.choice([100, 70_000, 1 << 20, (2 << 20) + 5])
        data = rnd.randbytes(n)
        out.append({"seq": i, "raw": data, "buf": pickle.PickleBuffer(bytearray(data[: n // 2]))})
    return out


def _send_seeded(ch, count):
    for obj in seeded_objects(count):
        ch.send(obj)
    ch.recv()  # the parent's all-done: do not close under it


@pytest.mark.parametrize("transport", ASYNC_TRANSPORTS)
def test_objects_from_another_process(transport, tmp_path):
    count = 12
    with peer_process(transport, tmp_path, _send_seeded, count) as (ch, proc):
        got = [ch.recv(timeout=TIMEOUT) for _ in range(count)]
        ch.send("done")
        proc.join(TIMEOUT)
        assert proc.exitcode == 0
    assert [digest(g) for g in got] == [digest(o) for o in seeded_objects(count)]


def _send_forever(ch):
    ch.send(pickle.PickleBuffer(bytearray(64 << 20)))  # blocks part-way: nobody reads until the kill


@pytest.mark.parametrize("transport", ["pipe", "unix", "tcp"])
def test_sender_killed_inside_a_frame_is_never_half_an_object(transport, tmp_path):
    with peer_process(transport, tmp_path, _send_forever) as (ch, proc):
        assert ch.poll(TIMEOUT)  # part of the 64 MiB frame has arrived: the sender is inside it
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(TIMEOUT)
        with pytest.raises(ConnectionResetError, match="inside a frame"):
            ch.recv(timeout=TIMEOUT)
