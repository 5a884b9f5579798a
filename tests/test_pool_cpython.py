"""CPython 3.11's multiprocessing.Pool tests, run on ringipc's context (Pool's
task and result queues are then ringipc's SimpleQueues).

Exclusions (also in docs/dropins.md) are deliberate differences, not failures.
"""
import gc

import pytest

from _cpython_mp import START_METHODS, bind, cpython

EXCLUDED = {}

for _method in START_METHODS:
    bind(cpython._TestPool, _method, EXCLUDED, globals())
    bind(cpython._TestPoolWorkerErrors, _method, EXCLUDED, globals())
    bind(cpython._TestPoolWorkerLifetime, _method, EXCLUDED, globals())
del _method


@pytest.fixture(autouse=True)
def collect_dropped_pools():
    """Several tests drop a Pool without joining it; a Pool sits in reference
    cycles (its results point back at it), so its queues -- and with them
    their rings' names -- go when the cycle collector runs, as multiprocessing's
    pipes do.  Collect before the suite's leak check looks."""
    yield
    gc.collect()
