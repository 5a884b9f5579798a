"""Awaitable channels: ``await ch.recv()`` on any transport with a ``fileno()``.

Every Channel's ``fileno()`` is readable while a message (or EOF) is ready
(docs/channels.md), so a receive registers it with the loop (``add_reader``;
one registration shared by all tasks awaiting the channel), then takes the
message with a zero timeout, which either returns it whole or leaves it:
a cancelled receive loses nothing.  A transport without a descriptor (System
V queues) is refused with a clear error rather than polled.

Sends wait for room through the loop too, on every transport with a
descriptor: frames whole and in order, and a cancelled send either sent
nothing or its frame is finished in the background
(ringipc/asyncio/_channel_send.py; shm:// awaits its ring's space bell,
ringipc/asyncio/_shm_send.py).
"""
from __future__ import annotations

import asyncio
import io
from typing import Any, AsyncIterator, Optional

from ..channels.channel import encode_object
from ..errors import ChannelClosed
from ..mp import oob
from ._channel_send import Sender
from ._closing import ClosesOnExit
from ._until_eof import until_eof
from ._waiters import Waiters

__all__ = ["AsyncChannel"]


class AsyncChannel(ClosesOnExit):
    """Wraps a connected :class:`ringipc.Channel` (``.sync``)."""

    def __init__(self, channel: Any) -> None:
        try:
            self._fd = channel.fileno()
        except (io.UnsupportedOperation, OSError) as exc:
            raise ValueError(f"{channel!r} has no descriptor to await (its transport cannot be polled)") from exc
        self.sync = channel
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._waiters = Waiters()
        self._sender = Sender(channel)

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        if not self._waiters:
            self._loop = loop
            loop.add_reader(self._fd, self._ready)
        elif self._loop is not loop:
            raise RuntimeError("this channel is being awaited in another event loop")
        await self._waiters.wait(loop, self._unregister)

    def _unregister(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._fd)

    def _ready(self) -> None:
        self._unregister()
        self._waiters.wake_all()

    async def recv_bytes(self, maxlength: Optional[int] = None) -> bytes:
        while True:
            try:
                return self.sync.recv_bytes(maxlength, timeout=0)  # type: ignore[no-any-return]
            except TimeoutError:
                await self._readable()

    async def recv(self) -> Any:
        while True:
            try:
                return self.sync.recv(timeout=0)
            except TimeoutError:
                await self._readable()

    async def recv_bytes_into(self, buf: Any, offset: int = 0) -> int:
        while True:
            try:
                return self.sync.recv_bytes_into(buf, offset, timeout=0)  # type: ignore[no-any-return]
            except TimeoutError:
                await self._readable()

    async def send_bytes(self, buf: Any, offset: int = 0, size: Optional[int] = None) -> None:
        await self._sender.send(self.sync._outgoing(buf, offset, size))

    async def send(self, obj: Any) -> None:
        ch = self.sync
        ch._check_open()
        if getattr(ch, "signed", True) is False:
            ch.send(obj)  # the transport's own refusal (udp:// without an authkey); nothing is sent
        # The wire format of Channel.send: a plain pickle, or an out-of-band frame (mp/oob.py).
        data = encode_object(obj)
        if type(data) is oob.Frame:
            await self._sender.send(ch._checked_frame(data))
        else:
            await self.send_bytes(data)

    def __aiter__(self) -> AsyncIterator[Any]:
        return until_eof(self.recv)

    def close(self) -> None:
        """Close the channel; awaiting receives wake (and raise), queued
        sends raise ChannelClosed."""
        self._ready()
        self._sender.close(ChannelClosed("channel closed while a send waited"))
        self.sync.close()
