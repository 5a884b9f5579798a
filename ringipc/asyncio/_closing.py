"""``async with`` for every awaitable endpoint: leaving the block closes it."""
from __future__ import annotations

from typing import Any, TypeVar

_Self = TypeVar("_Self", bound="ClosesOnExit")


class ClosesOnExit:
    """Mixin: ``async with obj:`` gives ``obj`` and calls ``obj.close()`` on
    the way out, whatever ended the block."""

    def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
