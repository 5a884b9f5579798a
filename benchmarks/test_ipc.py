"""Throughput, round trip and many-to-many, one test per facility (and size)."""
import os

import pytest

pytest.importorskip("pytest_benchmark")

from ringipc.bench.report import human_size  # noqa: E402
from ringipc.bench.runner import LATENCY, MPMC, THROUGHPUT, Session  # noqa: E402
from ringipc.bench.suite import initial_count  # noqa: E402

#: seconds one timed round takes for a facility about as fast as multiprocessing.Queue
ROUND_SECONDS = float(os.environ.get("RINGIPC_BENCH_ROUND", "0.1"))


def require(facility, size, producers=1, consumers=1):
    """Skip (with the facility's own reason) what cannot run here."""
    ok, why = facility.available()
    if not ok:
        pytest.skip(why)
    ok, why = facility.supports(size, producers, consumers)
    if not ok:
        pytest.skip(why)


def _measure(benchmark, facility, scenario, size, producers=1, consumers=1):
    if facility.scenarios is not None and scenario not in facility.scenarios:
        pytest.skip(f"{facility.name} has no {scenario} scenario")
    require(facility, size, producers, consumers)
    # One message count per group, so the times in a group compare facilities directly.
    n = initial_count(scenario, size, ROUND_SECONDS, producers)
    benchmark.group = f"{scenario} {human_size(size)}: {n * producers} messages"
    results = []
    with Session(facility, scenario, size, producers, consumers, timeout=60) as session:
        session.round(n)  # warm-up, and proof that the channel delivers intact

        def one_round():
            results.append(session.round(n))

        benchmark.pedantic(one_round, rounds=5, iterations=1)
    benchmark.extra_info.update(facility=facility.name, scenario=scenario, size=size, messages=n * producers)
    if scenario == LATENCY:
        best = min(results, key=lambda r: r.latency["median"])
        benchmark.extra_info.update(median_us=best.latency["median"] / 1e3, p99_us=best.latency["p99"] / 1e3)
    else:
        best = max(results, key=lambda r: r.rate)
        benchmark.extra_info.update(msg_per_s=best.rate, mb_per_s=best.mbps)

def test_throughput(benchmark, facility, size):
    _measure(benchmark, facility, THROUGHPUT, size)


def test_round_trip(benchmark, facility):
    _measure(benchmark, facility, LATENCY, 64)


def test_many_to_many(benchmark, facility):
    _measure(benchmark, facility, MPMC, 64, 2, 2)
