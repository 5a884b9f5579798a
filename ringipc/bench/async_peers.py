"""The asyncio peers benchmarks/test_asyncio.py and the bench's ``asyncio``
scenario (ringipc/bench/asyncio_rtt.py) compare, each as a pair of
processes with an event loop on both sides (forked children, asyncio.run).

Every peer offers ``await peer.rtt(n)`` (n sequential 64 B round trips
through an echoing child) and ``await peer.drain(n)`` (the child sends n
64 B messages as fast as it can, the parent awaits each).  Messages are
checked for length; the child of a throughput pair waits for its count on
a control pipe, so only message time is measured."""
import asyncio
import multiprocessing
import os
import socket
import struct
import tempfile
from typing import Any, Callable, Coroutine, List, Optional, Tuple, Type

from ringipc import asyncio as ra
from ringipc.core._ring import Ring

SIZE = 64
ctx = multiprocessing.get_context("fork")
COUNT = struct.Struct("<q")


def _child(main: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> Any:
    def target() -> None:
        asyncio.run(main(*args))
        os._exit(0)
    p = ctx.Process(target=target, daemon=True)
    p.start()
    return p


class _Peer:
    name = ""
    proc: Any = None

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def rtt(self, n: int) -> None:
        raise NotImplementedError

    async def drain(self, n: int) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()


# -- ringipc: two SPSC rings, AsyncRing on both sides -----------------------------
class RingipcRing(_Peer):
    name = "ringipc AsyncRing"

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.a, self.b = Ring(1 << 20, "spsc"), Ring(1 << 20, "spsc")
        self.proc = _child(self._serve, self.a, self.b)  # the rings themselves: anonymous, no names
        self.tx, self.rx = ra.AsyncRing(self.a), ra.AsyncRing(self.b)

    async def _serve(self, a: Ring, b: Ring) -> None:
        rx, tx = ra.AsyncRing(a), ra.AsyncRing(b)
        if self.mode == "rtt":
            async for m in rx:
                await tx.send_bytes(m)
        else:
            payload = b"x" * SIZE
            async for m in rx:
                for _ in range(COUNT.unpack(m)[0]):
                    await tx.send_bytes(payload)

    async def rtt(self, n: int) -> None:
        payload = b"x" * SIZE
        for _ in range(n):
            await self.tx.send_bytes(payload)
            assert len(await self.rx.recv_bytes()) == SIZE

    async def drain(self, n: int) -> None:
        await self.tx.send_bytes(COUNT.pack(n))
        for _ in range(n):
            assert len(await self.rx.recv_bytes()) == SIZE

    def stop(self) -> None:
        super().stop()
        self.tx.close()
        self.rx.close()


# -- ringipc: Pipe, bytes ------------------------------------------------------------
class RingipcPipe(_Peer):
    name = "ringipc Pipe"

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.here, there = ra.Pipe()
        self.proc = _child(self._serve, there)
        there.close()

    async def _serve(self, there: Any) -> None:
        conn = ra.Connection(there.sync)
        payload = b"x" * SIZE
        while True:
            m = await conn.recv_bytes()
            if self.mode == "rtt":
                await conn.send_bytes(m)
            else:
                for _ in range(COUNT.unpack(m)[0]):
                    await conn.send_bytes(payload)

    async def rtt(self, n: int) -> None:
        payload = b"x" * SIZE
        for _ in range(n):
            await self.here.send_bytes(payload)
            assert len(await self.here.recv_bytes()) == SIZE

    async def drain(self, n: int) -> None:
        await self.here.send_bytes(COUNT.pack(n))
        for _ in range(n):
            assert len(await self.here.recv_bytes()) == SIZE

    def stop(self) -> None:
        super().stop()
        self.here.close()


# -- pyzmq: zmq.asyncio PAIR (round trip) and PUSH/PULL (throughput) -----------
class Zmq(_Peer):
    name = "zmq.asyncio"

    def __init__(self, mode: str) -> None:
        import zmq
        import zmq.asyncio
        self.mode = mode
        self.dir = tempfile.mkdtemp(prefix="ringipc-bench-")
        self.addr = f"ipc://{self.dir}/s"
        self.ctl_r, self.ctl_w = os.pipe()
        self.proc = _child(self._serve)
        self.zctx = zmq.asyncio.Context()
        self.sock = self.zctx.socket(zmq.PAIR if mode == "rtt" else zmq.PULL)
        self.sock.connect(self.addr)

    async def _serve(self) -> None:
        import zmq
        import zmq.asyncio
        zctx = zmq.asyncio.Context()
        sock = zctx.socket(zmq.PAIR if self.mode == "rtt" else zmq.PUSH)
        sock.bind(self.addr)
        payload = b"x" * SIZE
        if self.mode == "rtt":
            while True:
                await sock.send(await sock.recv(copy=True), copy=True)
        loop = asyncio.get_running_loop()
        while True:
            fut = loop.create_future()
            def ready(fut: "asyncio.Future[None]" = fut) -> None:
                if not fut.done():
                    fut.set_result(None)
            loop.add_reader(self.ctl_r, ready)
            await fut
            loop.remove_reader(self.ctl_r)
            n = COUNT.unpack(os.read(self.ctl_r, COUNT.size))[0]
            for _ in range(n):
                await sock.send(payload, copy=True)

    async def rtt(self, n: int) -> None:
        payload = b"x" * SIZE
        for _ in range(n):
            await self.sock.send(payload, copy=True)
            assert len(await self.sock.recv(copy=True)) == SIZE

    async def drain(self, n: int) -> None:
        os.write(self.ctl_w, COUNT.pack(n))
        for _ in range(n):
            assert len(await self.sock.recv(copy=True)) == SIZE

    def stop(self) -> None:
        super().stop()
        self.sock.close(linger=0)
        self.zctx.term()
        for fd in (self.ctl_r, self.ctl_w):
            os.close(fd)
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)


# -- asyncio streams over a UNIX socket pair (round trip only) -----------------------
class Streams(_Peer):
    name = "asyncio streams (unix)"

    def __init__(self, mode: str) -> None:
        self.here, there = socket.socketpair()
        self.proc = _child(self._serve, there)
        there.close()
        self.rw: Optional[Tuple[asyncio.StreamReader, asyncio.StreamWriter]] = None

    async def _serve(self, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        while True:
            m = await reader.readexactly(SIZE)
            writer.write(m)
            await writer.drain()

    async def rtt(self, n: int) -> None:
        if self.rw is None:
            self.rw = await asyncio.open_unix_connection(sock=self.here)
        reader, writer = self.rw
        payload = b"x" * SIZE
        for _ in range(n):
            writer.write(payload)
            await writer.drain()
            assert len(await reader.readexactly(SIZE)) == SIZE

    def stop(self) -> None:
        super().stop()
        if self.rw is not None:
            self.rw[1].close()
        self.here.close()


RTT_PEERS: List[Type[_Peer]] = [RingipcRing, RingipcPipe, Zmq, Streams]
THROUGHPUT_PEERS: List[Type[_Peer]] = [RingipcRing, RingipcPipe, Zmq]
