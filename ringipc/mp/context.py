"""get_context(): multiprocessing's contexts with ringipc's queues and pipes.

``ringipc.get_context("spawn")`` is multiprocessing's spawn context in every
respect (Process, Pool, Event, Lock, start method, ...) except that its
Queue, JoinableQueue, SimpleQueue and Pipe are ringipc's.  ringipc's objects
themselves do not depend on the start method (they reach a child by name,
by inheritance, or as passed file descriptors), so the context only chooses
how processes start, as with multiprocessing.
"""
from __future__ import annotations

import multiprocessing
from typing import Any, Iterable, List, Optional, Tuple

from . import connection, queues, waiting


class RingContext:
    """Wraps a multiprocessing context; unknown attributes are the wrapped context's."""

    def __init__(self, mp_context: Any) -> None:
        self._mp = mp_context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mp, name)

    def __repr__(self) -> str:
        return f"<ringipc context {self._mp.get_start_method()!r}>"

    def get_context(self, method: Optional[str] = None) -> RingContext:
        return get_context(method)

    def Queue(self, maxsize: int = 0, **kwargs: Any) -> queues.Queue[Any]:
        return queues.Queue(maxsize, ctx=self, **kwargs)

    def JoinableQueue(self, maxsize: int = 0, **kwargs: Any) -> queues.JoinableQueue[Any]:
        return queues.JoinableQueue(maxsize, ctx=self, **kwargs)

    def SimpleQueue(self, **kwargs: Any) -> queues.SimpleQueue[Any]:
        return queues.SimpleQueue(ctx=self, **kwargs)

    def Pipe(self, duplex: bool = True, **kwargs: Any) -> Tuple[connection.Connection, connection.Connection]:
        return connection.Pipe(duplex, **kwargs)

    @staticmethod
    def wait(object_list: Iterable[Any], timeout: Optional[float] = None) -> List[Any]:
        return waiting.wait(object_list, timeout)


def get_context(method: Optional[str] = None) -> RingContext:
    """Like multiprocessing.get_context(method): None means the current default."""
    return RingContext(multiprocessing.get_context(method))
