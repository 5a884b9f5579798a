"""``async for`` over a stream that ends with EOFError (Connection, AsyncRing,
AsyncChannel): what each of them returns from ``__aiter__``."""
from __future__ import annotations

from typing import AsyncIterator, Awaitable, Callable, TypeVar

__all__ = ["until_eof"]

_T = TypeVar("_T")


async def until_eof(recv: Callable[[], Awaitable[_T]]) -> AsyncIterator[_T]:
    """Each ``await recv()`` in turn; stops (rather than raising) at EOFError,
    the end of the stream.  Every other error goes to the loop's body."""
    while True:
        try:
            yield await recv()
        except EOFError:
            return
