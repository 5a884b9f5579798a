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

    def __init__(self, mp_context, capacity=None):
        self._mp = mp_context
        # Ring size for every queue and pipe this context makes (None: each
        # class's default).  Pools and executors make their queues with no
        # arguments, so this is how a pool whose results are large gets rings
        # that hold them (larger objects go through side segments, slower).
        self._capacity = capacity

    def _sized(self, kwargs):
        if self._capacity is not None:
            kwargs.setdefault("capacity", self._capacity)
        return kwargs

    def __getattr__(self, name):
        return getattr(self._mp, name)

    def __repr__(self):
        return f"<ringipc context {self._mp.get_start_method()!r}>"

    def get_context(self, method=None):
        # As multiprocessing's: None means this context (Pool and
        # Manager ask their context for itself this way).
        return self if method is None else get_context(method, capacity=self._capacity)

    def Pool(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None):
        # multiprocessing's BaseContext.Pool passes *its own* context to the
        # Pool, whose queues would then be multiprocessing's: pass this one.
        from multiprocessing.pool import Pool
        return Pool(processes, initializer, initargs, maxtasksperchild, context=self)

    def Queue(self, maxsize=0, **kwargs):
        return queues.Queue(maxsize, ctx=self, **self._sized(kwargs))

    def JoinableQueue(self, maxsize=0, **kwargs):
        return queues.JoinableQueue(maxsize, ctx=self, **self._sized(kwargs))

    def SimpleQueue(self, **kwargs):
        return queues.SimpleQueue(ctx=self, **self._sized(kwargs))

    def Pipe(self, duplex=True, **kwargs):
        return connection.Pipe(duplex, **self._sized(kwargs))

    @staticmethod
    def wait(object_list, timeout=None):
        return waiting.wait(object_list, timeout)


def get_context(method=None, *, capacity=None):
    """Like multiprocessing.get_context(method): None means the current default.

    ``capacity`` (bytes) sizes the ring of every queue and pipe the context
    makes, including those Pool and ProcessPoolExecutor make internally."""
    return RingContext(multiprocessing.get_context(method), capacity)
