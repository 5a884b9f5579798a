"""Shared by the drop-in tests: the two implementations under one interface.

Every test body that takes the ``impl`` fixture runs against multiprocessing
(the specification) and ringipc; a difference between them is a bug unless
docs/dropins.md lists it.  ``impl.small`` asks ringipc for a small ring so that
buffering and oversize-object paths are exercised; multiprocessing ignores it.
"""
import multiprocessing
import multiprocessing.connection

import pytest

from ringipc.mp import waiting as ring_waiting
from ringipc.mp.context import get_context as ring_get_context

SMALL_CAPACITY = 1 << 14   # max_message_size 8 KiB: 20 KiB objects take the side-segment path
START_METHODS = ("fork", "spawn", "forkserver")


class Impl:
    def __init__(self, name, method="fork"):
        self.name = name
        self.method = method
        if name == "multiprocessing":
            self.ctx = multiprocessing.get_context(method)
            self.wait = multiprocessing.connection.wait
        else:
            self.ctx = ring_get_context(method)
            self.wait = ring_waiting.wait

    @property
    def is_ring(self):
        return self.name == "ringipc"

    def _small(self, small):
        return {"capacity": SMALL_CAPACITY} if small and self.is_ring else {}

    def Queue(self, maxsize=0, small=False):
        return self.ctx.Queue(maxsize, **self._small(small))

    def JoinableQueue(self, maxsize=0, small=False):
        return self.ctx.JoinableQueue(maxsize, **self._small(small))

    def SimpleQueue(self, small=False):
        return self.ctx.SimpleQueue(**self._small(small))

    def Pipe(self, duplex=True, small=False):
        return self.ctx.Pipe(duplex, **self._small(small))

    def Process(self, *args, **kwargs):
        p = self.ctx.Process(*args, **kwargs)
        p.daemon = True
        return p

    def __repr__(self):
        return f"{self.name}-{self.method}"


IMPL_NAMES = ("multiprocessing", "ringipc")


@pytest.fixture(params=IMPL_NAMES)
def impl(request):
    return Impl(request.param)


@pytest.fixture(params=[(n, m) for m in START_METHODS for n in IMPL_NAMES], ids=lambda p: f"{p[0]}-{p[1]}")
def proc_impl(request):
    """The implementation under each start method, for tests with child processes."""
    return Impl(*request.param)


def join_all(processes, timeout=60):
    for p in processes:
        p.join(timeout)
        assert p.exitcode is not None, f"{p} did not exit"
