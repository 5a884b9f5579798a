"""CPython 3.11's queue, joinable-queue and simple-queue tests, run on ringipc's classes.

Exclusions (also in docs/dropins.md) are deliberate differences, not failures.
"""
from _cpython_mp import START_METHODS, bind, cpython

EXCLUDED = {
    "test_queue_feeder_donot_stop_onexc":
        "ringipc pickles in put(): an unpicklable object raises there instead of "
        "being logged by the feeder thread (issue 4, cpython#84376)",
}

for _method in START_METHODS:
    bind(cpython._TestQueue, _method, EXCLUDED, globals())
    bind(cpython.TestSimpleQueue, _method, {}, globals())
del _method
