"""Binds CPython's own multiprocessing test classes to ringipc's drop-ins.

Nothing is vendored: the classes come from the interpreter's ``test`` package.
``bind(base, method, excluded)`` returns a unittest class that runs `base`'s
tests with ``self.Queue``/``self.JoinableQueue``/``self.Pipe``/``self.Pool`` (and, for the
tests that call ``multiprocessing.Queue()`` etc. directly, the test module's
``multiprocessing`` name) replaced by ringipc's, under start method `method`.
Every exclusion is listed, with its reason, in docs/dropins.md.
"""
import multiprocessing
import types
import unittest
from unittest import mock

import pytest

cpython = pytest.importorskip("test._test_multiprocessing")

from ringipc.connection import Pipe  # noqa: E402
from ringipc.context import get_context  # noqa: E402
from ringipc.queues import JoinableQueue, Queue, SimpleQueue  # noqa: E402

START_METHODS = ("fork", "spawn", "forkserver")


def Pool(processes=None, initializer=None, initargs=(), maxtasksperchild=None):
    """multiprocessing.Pool on ringipc's context for the current start method."""
    return get_context().Pool(processes, initializer, initargs, maxtasksperchild)


class _RingMultiprocessing(types.ModuleType):
    """The multiprocessing module as the test module sees it, with ringipc's classes."""

    Queue = staticmethod(Queue)
    JoinableQueue = staticmethod(JoinableQueue)
    SimpleQueue = staticmethod(SimpleQueue)
    Pipe = staticmethod(Pipe)
    Pool = staticmethod(Pool)

    def __getattr__(self, name):
        return getattr(multiprocessing, name)


class RingProcessesMixin(cpython.ProcessesMixin):
    Queue = staticmethod(Queue)
    JoinableQueue = staticmethod(JoinableQueue)
    Pipe = staticmethod(Pipe)
    Pool = staticmethod(Pool)
    start_method = None

    @classmethod
    def setUpClass(cls):
        cls._old_method = multiprocessing.get_start_method(allow_none=True)
        multiprocessing.set_start_method(cls.start_method, force=True)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            multiprocessing.set_start_method(cls._old_method, force=True)

    def setUp(self):
        patcher = mock.patch.object(cpython, "multiprocessing", _RingMultiprocessing("multiprocessing"))
        patcher.start()
        self.addCleanup(patcher.stop)
        super().setUp()


def _skip(reason):
    @unittest.skip(reason)
    def skipped(self):
        pass
    return skipped


def bind(base, method, excluded, module_globals, mixin=None):
    """Create ``With<Method>Ring<Base>`` in `module_globals` (spawned children
    find the class there by name to run its classmethod targets); `mixin`
    (a subclass of RingProcessesMixin) replaces more of multiprocessing."""
    mixin = mixin or RingProcessesMixin
    name = f"With{method.capitalize()}Ring{base.__name__.lstrip('_')}"
    attrs = {"start_method": method, "__module__": module_globals["__name__"], "__qualname__": name}
    attrs.update({test: _skip(reason) for test, reason in excluded.items()})
    bases = (base, mixin, unittest.TestCase) if issubclass(base, cpython.BaseTestCase) else (mixin, base)
    cls = type(name, bases, attrs)
    module_globals[name] = cls
    return cls
