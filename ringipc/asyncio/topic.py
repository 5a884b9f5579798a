"""Awaitable topic handles: :class:`AsyncSubscriber` and :class:`AsyncPublisher`.

As :class:`ringipc.asyncio.AsyncRing` does for a ring: every call first
makes the synchronous call without blocking (the same call a synchronous
user makes, so async and sync handles share one topic), and only when there
is nothing to read (or, for a lossless publisher, no room; or another
publisher holds the lock) awaits the handle's doorbell on the running loop
(csrc/topic_bell.c).  A message is taken in one non-blocking call that
either returns it or leaves it unread, and nothing is awaited between taking
it and returning it: a cancelled receive loses nothing.

A blocked publisher also re-arms every RECOVERY_EVERY seconds: a subscriber
(or lock holder) that died never rings, and arming is what looks for dead
processes, as a synchronous publisher's wait does in its slices.
"""
from __future__ import annotations

import asyncio
import queue
from typing import Any, AsyncIterator

from ..mp import pickling
from ..topic import Publisher, Subscriber, Topic
from ..topic._topic import RECOVERY_EVERY, TopicView
from ._bell import AsyncBell
from ._closing import ClosesOnExit

__all__ = ["AsyncSubscriber", "AsyncPublisher"]


class AsyncSubscriber(ClosesOnExit):
    """``await sub.recv_bytes()``, ``await sub.recv()``, ``async for``.

    Wraps `subscriber` (a :class:`ringipc.topic.Subscriber`), or subscribes
    to a :class:`ringipc.Topic` with ``history`` as ``Topic.subscribe``
    does.  ``close()`` closes the wrapped subscriber.  A subscriber is
    watched one way: not by this and its ``fileno()`` both."""

    def __init__(self, subscriber: "Subscriber | Topic", history: int = 0) -> None:
        if isinstance(subscriber, Topic):
            subscriber = subscriber.subscribe(history)
        elif not isinstance(subscriber, Subscriber):
            raise TypeError(f"AsyncSubscriber wraps a Topic or a Subscriber, not {type(subscriber).__name__}")
        self.sync: Subscriber = subscriber
        self._readable = AsyncBell(subscriber, writer=False, spin_us=0)  # topics have no spin check: park at once

    async def recv_bytes(self) -> bytes:
        """The next message as bytes."""
        sub = self.sync
        while True:
            try:
                return sub.recv_bytes(False)
            except queue.Empty:
                await self._readable.wait()

    async def recv_bytes_into(self, buffer: Any, offset: int = 0) -> int:
        """Copy the next message into `buffer` at `offset`; its length
        (BufferTooShort as Subscriber.recv_bytes_into)."""
        sub = self.sync
        while True:
            try:
                return sub.recv_bytes_into(buffer, offset, False)
            except queue.Empty:
                await self._readable.wait()

    async def recv_view(self) -> TopicView:
        """The next message in place (see Subscriber.recv_view)."""
        sub = self.sync
        while True:
            try:
                return sub.recv_view(False)
            except queue.Empty:
                await self._readable.wait()

    async def recv(self) -> Any:
        """The next message, unpickled."""
        return pickling.loads(await self.recv_bytes())

    def recv_bytes_nowait(self) -> bytes:
        return self.sync.recv_bytes(False)

    def poll(self) -> bool:
        return self.sync.poll(0)

    @property
    def missed(self) -> int:
        return self.sync.missed

    @property
    def seq(self) -> int:
        return self.sync.seq

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._objects()

    async def _objects(self) -> AsyncIterator[Any]:
        # A topic has no end of stream: this runs until the handle is closed
        # (OSError in the loop's body) or the loop's body breaks out.
        while True:
            yield await self.recv()

    def close(self) -> None:
        """Wake awaiting tasks (OSError) and close the subscriber."""
        self._readable.close()
        self.sync.close()

    def __repr__(self) -> str:
        return f"<ringipc.asyncio.AsyncSubscriber of {self.sync!r}>"


class AsyncPublisher(ClosesOnExit):
    """``await pub.send_bytes(data)``, ``await pub.send(obj)``: waits without
    blocking the loop while a lossless topic's slowest subscriber holds the
    room, or another publisher the lock.  Wraps `publisher` (a
    :class:`ringipc.topic.Publisher`) or opens one on a :class:`ringipc.Topic`."""

    def __init__(self, publisher: "Publisher | Topic") -> None:
        if isinstance(publisher, Topic):
            publisher = publisher.publisher()
        elif not isinstance(publisher, Publisher):
            raise TypeError(f"AsyncPublisher wraps a Topic or a Publisher, not {type(publisher).__name__}")
        self.sync: Publisher = publisher
        self._writable = AsyncBell(publisher, writer=True, spin_us=0)

    async def send_bytes(self, data: Any) -> None:
        """Publish one message (MessageTooLarge as Publisher.send_bytes)."""
        pub = self.sync
        while True:
            try:
                pub.send_bytes(data, block=False)
                return
            except queue.Full:
                try:
                    await asyncio.wait_for(self._writable.wait(), RECOVERY_EVERY)
                except asyncio.TimeoutError:
                    pass  # no ring: try again, and the next arm looks for the dead

    async def send(self, obj: Any) -> None:
        """Publish a picklable object."""
        await self.send_bytes(pickling.dumps(obj))

    def send_bytes_nowait(self, data: Any) -> None:
        self.sync.send_bytes(data, block=False)

    def close(self) -> None:
        """Wake awaiting tasks (OSError) and close the publisher."""
        self._writable.close()
        self.sync.close()

    def __repr__(self) -> str:
        return f"<ringipc.asyncio.AsyncPublisher of {self.sync!r}>"
