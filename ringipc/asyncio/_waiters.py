"""Tasks of one process awaiting one event, resumed together.

Every awaitable object here (a ring's bell, a channel's descriptor) keeps
one such list: the owner starts listening (registers a reader, arms a bell)
for the first waiter, and each later waiter only queues a future.  When
the event comes the owner resumes them all; each retries its call and
waits again if it found nothing.  A task whose wait is cancelled takes its
future out, and the last one to leave calls ``on_idle`` so the owner stops
listening: nobody is left to tell.  (``on_idle`` is given per wait, not
kept: a bound method of the owner kept here would make a reference cycle,
and an owner dropped by its user must go at once, not at the next garbage
collection - its finalizer is what lets go of the loop's registration.)
"""
from __future__ import annotations

import asyncio
from typing import Callable, List

__all__ = ["Waiters"]


class Waiters:
    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: List["asyncio.Future[None]"] = []

    def __bool__(self) -> bool:
        return bool(self._futures)

    async def wait(self, loop: asyncio.AbstractEventLoop, on_idle: Callable[[], None]) -> None:
        """Until wake_all(), or the calling task is cancelled (then
        ``on_idle()`` if it was the last waiter)."""
        fut: asyncio.Future[None] = loop.create_future()
        self._futures.append(fut)
        try:
            await fut
        finally:
            # Not resumed by wake_all (cancelled, or its task was): its place
            # goes, and with the last waiter the owner's listening.
            if not fut.done() or fut.cancelled():
                try:
                    self._futures.remove(fut)
                except ValueError:
                    pass
                if not self._futures:
                    on_idle()

    def wake_all(self) -> None:
        futures, self._futures = self._futures, []
        for fut in futures:
            if not fut.done():
                fut.set_result(None)
