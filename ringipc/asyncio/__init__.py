"""ringipc for asyncio: every endpoint awaitable, at no cost to programs that don't.

    from ringipc import asyncio as rasyncio
    q = rasyncio.Queue()               # q.sync goes to worker processes
    obj = await q.get()                # never blocks the loop
    await q.put(obj)                   # waits for room on a bounded queue
    a, b = rasyncio.Pipe()             # await a.send(x); await b.recv()
    ring = rasyncio.AsyncRing(1 << 20) # await ring.recv_bytes(); async for
    ch = rasyncio.AsyncChannel(ringipc.connect("unix://..."))
    sub = rasyncio.AsyncSubscriber(topic) # await sub.recv(); async for
    pub = rasyncio.AsyncPublisher(topic)  # await pub.send(obj)

A waiting call registers the ring's doorbell (docs/design.md, "Doorbells")
with the running loop: no thread, no polling, and writers pay nothing while
nobody awaits.  Before it parks, a wait looks at the ring for up to
``spin_us`` (a bounded busy-poll, only while the loop has nothing else to
run; ``spin_us=0`` on any object disables it).  Objects made here and synchronous ones share rings, so a
process-pool worker can ``put`` while an asyncio server awaits ``get``.
Cancellation (``asyncio.timeout``, ``wait_for``, task.cancel()) never
loses a message.  See docs/asyncio.md.
"""
from .channel import AsyncChannel
from .connection import Connection, Pipe
from .queues import JoinableQueue, Queue, SimpleQueue
from .ring import AsyncRing
from .topic import AsyncPublisher, AsyncSubscriber

__all__ = ["AsyncChannel", "AsyncPublisher", "AsyncRing", "AsyncSubscriber", "Connection", "JoinableQueue", "Pipe",
           "Queue", "SimpleQueue"]
