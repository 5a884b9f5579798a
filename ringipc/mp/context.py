"""get_context(): multiprocessing's contexts with ringipc's queues and pipes.

``ringipc.get_context("spawn")`` is multiprocessing's spawn context in every
respect (Process, Pool, Event, Lock, start method, ...) except that its
Queue, JoinableQueue, SimpleQueue and Pipe are ringipc's.  ringipc's objects
themselves do not depend on the start method (they reach a child by name,
by inheritance, or as passed file descriptors), so the context only chooses
how processes start, as with multiprocessing.
"""
import multiprocessing

from . import connection, queues, waiting


class RingContext:
    """Wraps a multiprocessing context; unknown attributes are the wrapped context's."""

    def __init__(self, mp_context):
        self._mp = mp_context

    def __getattr__(self, name):
        return getattr(self._mp, name)

    def __repr__(self):
        return f"<ringipc context {self._mp.get_start_method()!r}>"

    def get_context(self, method=None):
        return get_context(method)

    def Queue(self, maxsize=0, **kwargs):
        return queues.Queue(maxsize, ctx=self, **kwargs)

    def JoinableQueue(self, maxsize=0, **kwargs):
        return queues.JoinableQueue(maxsize, ctx=self, **kwargs)

    def SimpleQueue(self, **kwargs):
        return queues.SimpleQueue(ctx=self, **kwargs)

    def Pipe(self, duplex=True, **kwargs):
        return connection.Pipe(duplex, **kwargs)

    @staticmethod
    def wait(object_list, timeout=None):
        return waiting.wait(object_list, timeout)


def get_context(method=None):
    """Like multiprocessing.get_context(method): None means the current default."""
    return RingContext(multiprocessing.get_context(method))
