"""CPython 3.11's ProcessPoolExecutor tests (test_concurrent_futures), run on
``ringipc.ProcessPoolExecutor`` (call and result queues on rings) with
``mp_context=ringipc.get_context(method)`` under fork, spawn and forkserver.

The pyenv interpreter's ``test`` package lacks test_concurrent_futures, so the
module is loaded by path from Debian's copy (skipped where absent).  Its
directory is appended to sys.path so that spawned workers can import the
module's functions by name.  Nothing is vendored.  Exclusions (also in
docs/dropins.md) are deliberate differences, not failures.
"""
import gc
import importlib
import os
import sys
import unittest

import pytest

import ringipc

PATH = "/usr/lib/python3.11/test/test_concurrent_futures.py"
if sys.version_info[:2] != (3, 11) or not os.path.exists(PATH):
    pytest.skip(f"CPython 3.11's test_concurrent_futures is not at {PATH}", allow_module_level=True)

sys.path.append(os.path.dirname(PATH))
cf = importlib.import_module("test_concurrent_futures")

MIXINS = {"fork": "ProcessPoolFork", "spawn": "ProcessPoolSpawn", "forkserver": "ProcessPoolForkserver"}
SUITES = ("Initializer", "FailingInitializer", "ProcessPoolShutdown", "Wait", "AsCompleted",
          "ProcessPoolExecutor", "ExecutorDeadlock")

FRESH_INTERPRETER = ("runs a fresh interpreter that imports test.test_concurrent_futures (absent from this "
                     "interpreter's test package) and builds its executor on multiprocessing's context, "
                     "so it tests nothing of ringipc")
EXCLUDED = {
    "test_interpreter_shutdown": FRESH_INTERPRETER,
    "test_submit_after_interpreter_shutdown": FRESH_INTERPRETER,
    # CPython skips it for its ProcessPoolExecutor ("hangs, see cpython#83386")
    # by comparing executor_type with that class, which ringipc's subclass is not.
    "test_hang_gh83386": "skipped by CPython for ProcessPoolExecutor (hangs, cpython#83386)",
}


def _skip(reason):
    @unittest.skip(reason)
    def skipped(self):
        pass
    return skipped


def _ring_get_context(base):
    def get_context(self):
        base(self)  # the original's skip checks
        return ringipc.get_context(self.ctx)
    return get_context


def _tear_down(base):
    def tearDown(self):
        try:
            base(self)
        finally:
            # unittest keeps each test's instance, and with it the ringipc
            # Queue FailingInitializerMixin stores there (also in its initargs),
            # until the run ends.
            self.__dict__.pop("log_queue", None)
            self.__dict__.pop("executor_kwargs", None)
    return tearDown


def _bind(method, suite):
    original = getattr(cf, f"{MIXINS[method]}{suite}Test")
    name = f"WithRing{original.__name__}"
    attrs = {"get_context": _ring_get_context(original.get_context), "tearDown": _tear_down(original.tearDown),
             "executor_type": ringipc.ProcessPoolExecutor,
             "__module__": __name__,
             "__qualname__": name}
    attrs.update({t: _skip(r) for t, r in EXCLUDED.items() if hasattr(original, t)})
    globals()[name] = type(name, (original,), attrs)


for _method in MIXINS:
    for _suite in SUITES:
        _bind(_method, _suite)
del _method, _suite


@pytest.fixture(autouse=True)
def collect_dropped_executors():
    """Executors dropped without shutdown() go with the cycle collector (and
    their queues' rings with them): collect before the suite's leak check."""
    yield
    gc.collect()
