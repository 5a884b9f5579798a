"""Functional behaviour of one Ring in one process, for both kinds."""
import os
import pickle
import queue
import time

import pytest

from _proc_support import until_asleep_in
from _segment_poke import unique_name
import ringipc
from ringipc import Ring

KINDS = ["spsc", "mpmc"]


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def ring(kind):
    with Ring(capacity=4096, kind=kind) as r:
        yield r


def test_capacity_rounds_up_to_power_of_two(kind):
    with Ring(capacity=5000, kind=kind) as r:
        assert r.capacity == 8192
        assert r.max_message_size == 4096
        assert r.kind == kind


def test_empty_ring_raises_empty_without_blocking(ring):
    with pytest.raises(queue.Empty):
        ring.recv_bytes(block=False)
    assert ring.poll() is False
    assert ring.used_bytes() == 0


@pytest.mark.parametrize("payload", [b"", b"x", b"y" * 63, b"z" * 64, b"w" * 65, bytes(range(256)) * 8])
def test_roundtrip_keeps_content_and_boundaries(ring, payload):
    ring.send_bytes(payload)
    ring.send_bytes(b"next")
    assert ring.poll() is True
    assert ring.recv_bytes() == payload
    assert ring.recv_bytes() == b"next"


def test_accepts_any_bytes_like(ring):
    ring.send_bytes(bytearray(b"ba"))
    ring.send_bytes(memoryview(b"mv"))
    import array
    ring.send_bytes(array.array("i", [1, 2]))
    assert [ring.recv_bytes() for _ in range(3)] == [b"ba", b"mv", array.array("i", [1, 2]).tobytes()]


def test_wrong_types_raise_type_error(ring):
    for bad in ("text", 12, None, [b"x"]):
        with pytest.raises(TypeError):
            ring.send_bytes(bad)
    with pytest.raises(TypeError):
        ring.recv_bytes_into(b"immutable")


def test_oversize_message_raises_value_error_naming_limit(ring):
    with pytest.raises(ringipc.MessageTooLarge, match="2048"):
        ring.send_bytes(b"x" * (ring.max_message_size + 1))
    with pytest.raises(ValueError):
        ring.send_bytes(b"x" * 10_000)
    ring.send_bytes(b"x" * ring.max_message_size)  # the limit itself fits
    assert len(ring.recv_bytes()) == ring.max_message_size


def test_exact_capacity_fill_then_full(ring):
    cell = ring._debug_layout()["cell"]
    count = ring.capacity // cell
    for i in range(count):
        ring.send_bytes(i.to_bytes(2, "little") * (cell // 2), block=False)
    assert ring.used_bytes() == ring.capacity
    with pytest.raises(queue.Full):
        ring.send_bytes(b"", block=False)
    with pytest.raises(queue.Full):
        ring.send_bytes(b"", timeout=0)
    for i in range(count):
        assert ring.recv_bytes(block=False) == i.to_bytes(2, "little") * (cell // 2)
    with pytest.raises(queue.Empty):
        ring.recv_bytes(block=False)


def test_wrap_around_every_size_class(ring):
    """Sizes cross the end of the data area at every alignment; order and bytes survive."""
    sent = []
    sizes = [0, 1, 7, 63, 64, 65, 127, 128, 500, 1000, 2048]
    for round_ in range(40):
        for size in sizes:
            payload = bytes([(round_ + size) & 0xFF]) * size
            while True:
                try:
                    ring.send_bytes(payload, block=False)
                    sent.append(payload)
                    break
                except queue.Full:
                    assert ring.recv_bytes(block=False) == sent.pop(0)
    while sent:
        assert ring.recv_bytes(block=False) == sent.pop(0)


def test_recv_bytes_into_reuses_buffer(ring):
    buf = bytearray(100)
    ring.send_bytes(b"abc")
    assert ring.recv_bytes_into(buf) == 3
    assert buf[:3] == b"abc"
    ring.send_bytes(b"")
    assert ring.recv_bytes_into(memoryview(buf)[10:]) == 0


def test_recv_bytes_into_too_small_raises_with_message(ring):
    ring.send_bytes(b"0123456789")
    with pytest.raises(ringipc.BufferTooShort) as info:
        ring.recv_bytes_into(bytearray(4))
    assert info.value.args[0] == b"0123456789"
    import multiprocessing
    assert isinstance(info.value, multiprocessing.BufferTooShort)
    with pytest.raises(queue.Empty):
        ring.recv_bytes(block=False)


def test_batches(ring):
    assert ring.send_bytes_many([b"a", b"", b"ccc"]) == 3
    assert ring.recv_bytes_many(2) == [b"a", b""]
    assert ring.recv_bytes_many(10) == [b"ccc"]
    with pytest.raises(queue.Empty):
        ring.recv_bytes_many(5, block=False)
    with pytest.raises(ValueError):
        ring.recv_bytes_many(0)


def test_batch_with_a_bad_item_sends_what_came_before_it(ring):
    def items():
        yield b"one"
        yield b"two"
        raise KeyError("from the generator")

    with pytest.raises(TypeError):
        ring.send_bytes_many([b"a", b"b", 42, b"never"])
    assert ring.recv_bytes_many(10, block=False) == [b"a", b"b"]
    with pytest.raises(KeyError):
        ring.send_bytes_many(items())
    assert ring.recv_bytes_many(10, block=False) == [b"one", b"two"]


def test_batches_mixing_small_and_large_messages_keep_their_order():
    """Large messages leave the batch claim (their copy runs without the
    GIL); the small ones around them still arrive in order, across wraps."""
    with Ring(capacity=1 << 20, kind="mpmc") as ring:
        big = bytes(range(256)) * 400  # 100 KiB
        batch = [b"a", b"bb" * 40, big, b"", b"c" * 63, big[::-1]] + [bytes([i]) * i for i in range(200)]
        for _ in range(12):  # 12 x ~240 KiB: the claims wrap the 1 MiB ring several times
            assert ring.send_bytes_many(batch) == len(batch)
            got = []
            while len(got) < len(batch):
                got += ring.recv_bytes_many(50)
            assert got == batch


def test_send_many_stops_at_full_without_losing_order(ring):
    msgs = [bytes([i]) * 100 for i in range(100)]
    with pytest.raises(queue.Full):
        ring.send_bytes_many(msgs, block=False)
    got = []
    while True:
        try:
            got.append(ring.recv_bytes(block=False))
        except queue.Empty:
            break
    assert got == msgs[: len(got)] and 0 < len(got) < 100


def test_timeouts_hold_on_the_monotonic_clock(ring):
    start = time.monotonic()
    with pytest.raises(queue.Empty):
        ring.recv_bytes(timeout=0.15)
    assert time.monotonic() - start >= 0.15
    assert ring.poll(0.05) is False
    while True:
        try:
            ring.send_bytes(b"x" * 1000, block=False)
        except queue.Full:
            break
    start = time.monotonic()
    with pytest.raises(queue.Full):
        ring.send_bytes(b"x" * 1000, timeout=0.1)
    assert time.monotonic() - start >= 0.1


def test_negative_timeout_acts_like_zero(ring):
    with pytest.raises(queue.Empty):
        ring.recv_bytes(timeout=-1)


def test_closed_handle_raises_value_error(kind):
    r = Ring(capacity=4096, kind=kind)
    r.close()
    r.close()  # idempotent
    assert r.closed
    for call in (lambda: r.send_bytes(b"x"), lambda: r.recv_bytes(block=False), lambda: r.poll(),
                 lambda: r.max_message_size, lambda: pickle.dumps(r)):
        with pytest.raises(ValueError):
            call()


def test_shutdown_write_gives_eof_after_drain(ring):
    ring.send_bytes(b"last")
    ring.shutdown("write")
    assert ring.poll() is True
    assert ring.recv_bytes() == b"last"
    with pytest.raises(EOFError):
        ring.recv_bytes()
    with pytest.raises(EOFError):
        ring.recv_bytes(block=False)


def test_shutdown_read_gives_broken_pipe(ring):
    ring.shutdown("read")
    with pytest.raises(BrokenPipeError):
        ring.send_bytes(b"x")
    with pytest.raises(ValueError):
        ring.shutdown("sideways")


def test_attach_by_name_and_pickle(kind):
    with Ring(capacity=4096, kind=kind, name=unique_name()) as ring:
        _attach_by_name_and_pickle(ring)


def _attach_by_name_and_pickle(ring):
    twin = Ring.attach(ring.name)
    try:
        assert not twin.creator and ring.creator
        twin.send_bytes(b"from twin") if ring.kind == "mpmc" else None
        clone = pickle.loads(pickle.dumps(ring))
        assert clone.name == ring.name and clone.kind == ring.kind
        clone.close()
    finally:
        twin.close()
    if ring.kind == "mpmc":
        assert ring.recv_bytes() == b"from twin"
    import os
    assert os.path.exists("/dev/shm/" + ring.name)  # a non-creator's close never unlinks


def test_creator_close_unlinks(kind):
    import os
    r = Ring(capacity=4096, kind=kind, name=f"unit-{os.getpid()}-{kind}")
    assert r.name == f"ringipc-unit-{os.getpid()}-{kind}"
    assert os.path.exists("/dev/shm/" + r.name)
    with pytest.raises(FileExistsError):
        Ring(capacity=4096, kind=kind, name=r.name)
    r.close()
    assert not os.path.exists("/dev/shm/" + r.name)
    with pytest.raises(FileNotFoundError):
        Ring.attach(r.name)


def test_segment_is_private_to_owner(kind):
    import os
    import stat
    with Ring(capacity=4096, kind=kind, name=unique_name()) as named, Ring(capacity=4096, kind=kind) as anonymous:
        for ring in (named, anonymous):
            mode = stat.S_IMODE(os.stat(ring._debug_segment_path()).st_mode)
            assert mode & 0o077 == 0


def test_anonymous_ring_travels_as_a_descriptor_and_never_by_plain_pickle(ring):
    from multiprocessing.reduction import ForkingPickler
    assert not os.path.exists("/dev/shm/" + ring.name)
    with pytest.raises(TypeError, match="name="):
        pickle.dumps(ring)
    with pytest.raises(FileNotFoundError):
        Ring.attach(ring.name)
    twin = pickle.loads(ForkingPickler.dumps(ring))  # what pools and queues use
    try:
        assert twin.name == ring.name and not twin.creator
        if ring.kind == "mpmc":
            twin.send_bytes(b"through the descriptor")
            assert ring.recv_bytes() == b"through the descriptor"
    finally:
        twin.close()


def test_bad_constructor_arguments():
    with pytest.raises(ValueError):
        Ring(capacity=4096, kind="ring")
    with pytest.raises(ValueError):
        Ring(capacity=0)
    with pytest.raises(ValueError):
        Ring(capacity=-5)
    with pytest.raises(ValueError):
        Ring(capacity=1 << 62)
    with pytest.raises(ValueError):
        Ring(capacity=4096, name="a/b")


def test_spsc_refuses_second_live_producer_in_another_process():
    import multiprocessing
    with Ring(capacity=4096, kind="spsc") as r:
        r.send_bytes(b"parent is the producer")
        ctx = multiprocessing.get_context("fork")
        out = ctx.SimpleQueue()
        p = ctx.Process(target=_try_send, args=(r, out))
        p.start()
        p.join()
        assert out.get().startswith("RingError")
        assert r.recv_bytes() == b"parent is the producer"


def _try_send(r, out):
    try:
        r.send_bytes(b"second producer")
        out.put("sent")
    except ringipc.RingError as exc:
        out.put(f"RingError: {exc}")


def test_ring_in_a_garbage_cycle_is_collected_cleanly(kind):
    import gc
    import os

    def fail_holding_a_ring():
        ring = Ring(capacity=4096, kind=kind, name=unique_name())
        ring.send_bytes(b"x")
        try:
            raise KeyError(ring.name)
        except KeyError as exc:
            error = exc  # frame -> error -> traceback -> frame: only the collector frees it
        return error.args[0]

    name = fail_holding_a_ring()
    assert os.path.exists("/dev/shm/" + name)  # kept alive by the cycle
    gc.collect()  # collects the Ring through the cycle: must not touch a released mapping
    assert not os.path.exists("/dev/shm/" + name)


def test_partial_batch_reports_how_many_went_in(ring):
    msgs = [b"m" * 1000] * 10
    with pytest.raises(queue.Full) as info:
        ring.send_bytes_many(msgs, block=False)
    assert info.value.sent == len(ring.recv_bytes_many(100))
    assert 0 < info.value.sent < 10


def test_threads_sharing_one_handle_take_turns(kind):
    """Large copies drop the GIL mid-claim; other threads of the process must
    not start a claim of their own on the same handle meanwhile."""
    import threading
    import zlib

    size, per_thread, writers = 100 * 1024, 40, 3
    with Ring(capacity=1 << 20, kind=kind) as ring:
        def write(tid):
            for seq in range(per_thread):
                body = bytes([tid * 50 + seq % 50]) * size
                ring.send_bytes(tid.to_bytes(2, "little") + seq.to_bytes(4, "little") + body, timeout=30)

        threads = [threading.Thread(target=write, args=(t,)) for t in range(writers)]
        for t in threads:
            t.start()
        last = {}
        for _ in range(writers * per_thread):
            msg = ring.recv_bytes(timeout=30)
            tid, seq = int.from_bytes(msg[:2], "little"), int.from_bytes(msg[2:6], "little")
            assert msg[6:] == bytes([tid * 50 + seq % 50]) * size, zlib.crc32(msg)
            assert seq == last.get(tid, -1) + 1
            last[tid] = seq
        for t in threads:
            t.join()


def test_close_while_another_thread_waits(kind):
    """The waiting thread gets ChannelClosed; nothing touches an unmapped segment."""
    import threading

    ring = Ring(capacity=4096, kind=kind)
    outcome, tid = [], []
    started = threading.Event()

    def wait_for_message():
        tid.append(threading.get_native_id())
        started.set()
        try:
            ring.recv_bytes(timeout=30)
        except ringipc.ChannelClosed as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait_for_message)
    waiter.start()
    started.wait()
    until_asleep_in(f"/proc/self/task/{tid[0]}", "futex")
    ring.close()
    waiter.join(timeout=30)
    assert not waiter.is_alive()
    assert len(outcome) == 1 and ring.closed
