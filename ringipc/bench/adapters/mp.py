"""multiprocessing's own channels: the baseline every ratio is taken against."""
import multiprocessing
from typing import Any

from ringipc.bench.adapters.base import ConnectionPair, SharedQueue

_ctx = multiprocessing.get_context("spawn")


class MpQueue(SharedQueue):
    name = "mp.Queue"

    def make_queue(self, size: int) -> Any:
        return _ctx.Queue()


class MpSimpleQueue(SharedQueue):
    name = "mp.SimpleQueue"

    def make_queue(self, size: int) -> Any:
        return _ctx.SimpleQueue()


class MpPipe(ConnectionPair):
    """The default duplex Pipe, as users create it; raw bytes, no pickling."""

    name = "mp.Pipe"

    def make_pair(self, size: int) -> Any:
        return _ctx.Pipe()


FACILITIES = [MpQueue(), MpSimpleQueue(), MpPipe()]
