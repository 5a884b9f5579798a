"""pytest-benchmark suite over the same adapters and runner as ``python -m ringipc bench``.

Run with ``pytest benchmarks/`` (the project's normal test run only collects
``tests/``).  Each test keeps one pair of processes alive and times rounds of
messages through it; ``python -m ringipc bench`` instead starts fresh
processes for every run and compares everything in one table.

``RINGIPC_BENCH_SIZES`` (e.g. ``64,64K``) narrows the message sizes, ``-k``
the facilities.
"""
import os

from ringipc.bench.adapters import all_facilities
from ringipc.bench.report import human_size, parse_size
from ringipc.bench.suite import DEFAULT_SIZES

FACILITIES = all_facilities()
SIZES = [parse_size(t) for t in os.environ.get("RINGIPC_BENCH_SIZES", "").split(",") if t.strip()] or DEFAULT_SIZES


def pytest_generate_tests(metafunc):
    if "facility" in metafunc.fixturenames:
        metafunc.parametrize("facility", FACILITIES, ids=[f.name for f in FACILITIES])
    if "size" in metafunc.fixturenames:
        metafunc.parametrize("size", SIZES, ids=[human_size(s).replace(" ", "") for s in SIZES])

