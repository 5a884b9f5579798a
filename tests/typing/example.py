"""A typed user of ringipc: every name in ``ringipc.__all__``, checked by
``mypy --strict`` (tests/test_typing.py).  Not collected by pytest; nothing
here runs at import."""
from __future__ import annotations

import io
import warnings
from typing import Any, List, Optional, Tuple, Type

import ringipc
from ringipc import (
    AddressError,
    AuthenticationError,
    BufferTooShort,
    ByteStream,
    Channel,
    ChannelClosed,
    Connection,
    CorruptSegment,
    FallbackWarning,
    FrameError,
    JoinableQueue,
    Lease,
    LeaseReleased,
    Listener,
    MessageOverwritten,
    MessageTooLarge,
    PeerDied,
    Pipe,
    ProcessPoolExecutor,
    Publisher,
    Queue,
    ResourceLimitError,
    Ring,
    RingError,
    RingStream,
    SharedMemoryUnavailable,
    SimpleQueue,
    Subscriber,
    Topic,
    connect,
    get_context,
    install,
    listen,
    pipe_pair,
    register_scheme,
    stream_pair,
    uninstall,
    wait,
)

ERRORS: Tuple[Type[Exception], ...] = (
    RingError, CorruptSegment, MessageTooLarge, ChannelClosed, BufferTooShort, PeerDied,
    SharedMemoryUnavailable, AuthenticationError, FrameError, AddressError, ResourceLimitError,
)


def ring_round_trip() -> bytes:
    with Ring(capacity=1 << 16, kind="spsc") as ring:
        ring.send_bytes(b"hello")
        n: int = ring.send_bytes_many([b"a", bytearray(b"b"), memoryview(b"c")])
        batch: List[bytes] = ring.recv_bytes_many(8, timeout=1.0)
        other = Ring.attach(ring.name)
        buf = bytearray(ring.max_message_size)
        got: int = other.recv_bytes_into(buf, block=False) if other.poll(0.0) else 0
        with ring.send_view(4) as w:
            memoryview(w)[:4] = b"abcd"
        with ring.recv_view() as r:
            data = bytes(r)
        other.close()
        return data + bytes(n + got + len(batch))


def queues() -> int:
    q: Queue[int] = Queue(maxsize=10)
    q.put(1)
    q.put_many([2, 3])
    total = q.get(timeout=1.0) + sum(q.get_many(max_messages=2))
    jq = JoinableQueue[str]()
    jq.put("x")
    word: str = jq.get()
    jq.task_done()
    jq.join()
    sq: SimpleQueue[bytes] = SimpleQueue()
    sq.put(b"y")
    raw: bytes = sq.get()
    bq: Queue[bytes] = Queue()
    bq.put(b"z" * (1 << 17))
    lease: Lease[Any] = bq.get_lease(timeout=1.0)
    with lease as view:  # large buffers look into shared memory until released
        size = len(view)
    try:
        lease.obj
    except LeaseReleased:
        pass
    for each in (q, jq, bq):
        each.close()
        each.join_thread()
    return total + len(word) + len(raw) + size


def pipes() -> Any:
    a, b = Pipe(duplex=True)
    a.send({"k": 1})
    ready: List[Any] = wait([b], timeout=1.0)
    conn: Connection = b
    obj = conn.recv() if ready else None
    b.send(bytes(1 << 17))
    with a.recv_lease() as frame:
        obj = (obj, len(frame))
    ctx = get_context("spawn", capacity=1 << 16)
    cq = ctx.Queue()
    cq.put(obj)
    install()  # multiprocessing's own factories hand out ringipc's objects until uninstall()
    uninstall()
    with ProcessPoolExecutor(2, mp_context=ctx) as ex:  # call and result queues on rings
        squares: List[int] = list(ex.map(abs, [-1, -2]))
    return cq.get(), squares


def channels(address: str) -> Optional[bytes]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        server: Listener = listen(address)
        client: Channel = connect(address, timeout=1.0)
    client.send_bytes(b"ping")
    peer = server.accept(timeout=1.0)
    reply: bytes = peer.recv_bytes(timeout=1.0)
    stream: io.RawIOBase = connect(address, mode="stream")
    stream.close()
    client.close()
    server.close()
    return reply


def streams() -> int:
    w, r = stream_pair(capacity=1 << 16)
    writer: RingStream = w
    writer.write(b"bytes")
    chunk: Optional[bytes] = r.read(5)
    p1, p2 = pipe_pair(mode="stream")
    plain: ByteStream = p1
    plain.write(b"z")
    m1, m2 = pipe_pair()
    m1.send_bytes(b"m")
    return len(chunk or b"") + len(m2.recv_bytes()) + len(p2.read(1) or b"")


def schemes() -> None:
    def open_loop(target: str, **opts: Any) -> Channel:
        a, _ = pipe_pair()
        return a

    def listen_loop(target: str, **opts: Any) -> Listener:
        raise ringipc.AddressError(f"loop://{target} cannot listen")

    register_scheme("loop", open_loop, listen_loop, replace=True)
    version: str = ringipc.__version__
    assert version


def primitives() -> bool:
    """ringipc.sync: not re-exported by ringipc, typed all the same."""
    from ringipc import sync

    lock = sync.Lock()
    rlock = sync.RLock()
    cond = sync.Condition(rlock)
    with cond:
        cond.notify_all()
        ready: bool = cond.wait_for(lambda: True, timeout=0.1)
    sem = sync.Semaphore(2, undo=True)
    event = sync.Event()
    event.set()
    got: bool = lock.acquire(timeout=1.0) and sem.acquire(block=False) and event.wait(0)
    lock.release()
    for p in (lock, sem, event, rlock, cond):
        p.close()
    return ready and got


def topics() -> bytes:
    topic = Topic(capacity=1 << 16, policy="lossless")
    pub: Publisher = topic.publisher()
    sub: Subscriber = topic.subscribe()
    fd: int = sub.fileno()
    pub.send_bytes(b"tick")
    got: bytes = sub.recv_bytes(timeout=1.0 + fd * 0)
    try:
        with sub.recv_view(block=False) as view:
            view.tobytes()
    except MessageOverwritten:
        pass
    except Exception:
        pass
    topic.close()
    return got


async def awaiting() -> int:
    """ringipc.asyncio: every endpoint awaitable (docs/asyncio.md)."""
    from ringipc import asyncio as rasyncio

    q: rasyncio.Queue[int] = rasyncio.Queue(maxsize=8)
    async with q:
        await q.put(1)
        q.put_nowait(2)
        total: int = await q.get() + q.get_nowait()
    sq: rasyncio.SimpleQueue[str] = rasyncio.SimpleQueue()
    await sq.put("a")
    text: str = await sq.get()
    sq.close()
    jq: rasyncio.JoinableQueue[int] = rasyncio.JoinableQueue()
    await jq.put(3)
    total += await jq.get()
    jq.task_done()
    await jq.join()
    jq.close()
    a, b = rasyncio.Pipe(spin_us=20.0)
    async with a, b:
        await a.send({"n": 1})
        got: Any = await b.recv()
        await b.send_bytes(b"xyz")
        buf = bytearray(8)
        total += await a.recv_bytes_into(buf)
    async with rasyncio.AsyncRing(1 << 16, spin_us=0) as ring:
        await ring.send_bytes(b"r")
        data: bytes = await ring.recv_bytes()
        ring.shutdown("write")
        async for message in ring:
            total += len(message)
    topic = Topic(capacity=1 << 16)
    async with rasyncio.AsyncSubscriber(topic, history=0) as sub, rasyncio.AsyncPublisher(topic) as pub:
        await pub.send({"t": 1})
        await pub.send_bytes(b"raw")
        got = await sub.recv()
        raw: bytes = await sub.recv_bytes()
        total += sub.missed + len(raw)
    topic.close()
    return total + len(text) + len(data) + len(got)
