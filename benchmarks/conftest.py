"""pytest-benchmark suite over the same adapters and runner as ``python -m ringipc bench``.

Run with ``pytest benchmarks/`` (the project's normal test run only collects
``tests/``).  Each test keeps one pair of processes alive and times rounds of
messages through it; ``python -m ringipc bench`` instead starts fresh
processes for every run and compares everything in one table.

``RINGIPC_BENCH_SIZES`` (e.g. ``64,64K``) narrows the message sizes, ``-k``
the facilities.
"""
import os

import pytest

pytest.importorskip("pytest_benchmark")

from ringipc.bench.adapters import all_facilities  # noqa: E402
from ringipc.bench.report import human_size, parse_size  # noqa: E402
from ringipc.bench.suite import DEFAULT_SIZES  # noqa: E402

FACILITIES = all_facilities()
SIZES = [parse_size(t) for t in os.environ.get("RINGIPC_BENCH_SIZES", "").split(",") if t.strip()] or DEFAULT_SIZES

#: seconds one timed round aims for; several rounds per test
ROUND_SECONDS = float(os.environ.get("RINGIPC_BENCH_ROUND", "0.1"))


def pytest_generate_tests(metafunc):
    if "facility" in metafunc.fixturenames:
        metafunc.parametrize("facility", FACILITIES, ids=[f.name for f in FACILITIES])
    if "size" in metafunc.fixturenames:
        metafunc.parametrize("size", SIZES, ids=[human_size(s).replace(" ", "") for s in SIZES])


def require(facility, size, producers=1, consumers=1):
    """Skip (with the facility's own reason) what cannot run here."""
    ok, why = facility.available()
    if not ok:
        pytest.skip(why)
    ok, why = facility.supports(size, producers, consumers)
    if not ok:
        pytest.skip(why)
