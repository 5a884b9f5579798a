"""The benchmark's bookkeeping, without running anything: sizes, selection, order, summaries."""
import math
import os
import select

import pytest

from ringipc.bench import adapters
from ringipc.bench.adapters.base import Facility
from ringipc.bench.report import human_size, parse_size
from ringipc.bench.runner import LATENCY, THROUGHPUT, Result, cpu_plan
from ringipc.bench.suite import Cell, Settings, plan, schedule, summarize


@pytest.mark.parametrize("text,size", [("64", 64), ("1K", 1024), ("64KiB", 65536), ("1M", 1 << 20),
                                       ("1.5k", 1536), ("2MB", 2 << 20)])
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_human_size_round_trips():
    for size in (16, 64, 1000, 1024, 65536, 1 << 20):
        assert parse_size(human_size(size).replace(" ", "")) == size


def test_globs_select_and_skip():
    names = [f.name for f in adapters.select(only="ringipc.Ring-*", skip="*.many,*.nospin")]
    assert names == ["ringipc.Ring-spsc", "ringipc.Ring-mpmc", "mp.Queue"]
    with pytest.raises(ValueError, match="no facility matches"):
        adapters.select(skip="nothing-like-this")


class _Fake(Facility):
    def __init__(self, name, mpmc=False, ok=True):
        self.name, self.mpmc, self._ok = name, mpmc, ok

    def available(self):
        return (True, "") if self._ok else (False, "not here")


def test_plan_skips_with_reasons_and_schedule_rotates_each_repetition():
    fs = [_Fake("a", mpmc=True), _Fake("b"), _Fake("gone", ok=False)]
    cells, skips = plan(fs, Settings(sizes=[64], scenarios=[THROUGHPUT, "mpmc"]))
    assert [(c.facility.name, c.scenario) for c in cells] == [("a", THROUGHPUT), ("a", "mpmc"), ("b", THROUGHPUT)]
    assert {(s.facility, s.reason) for s in skips} == {("gone", "not here"), ("b", "no shared many-to-many channel")}
    order = [(rep, c.facility.name) for rep, c in schedule([c for c in cells if c.scenario == THROUGHPUT], 3)]
    assert order == [(0, "a"), (0, "b"), (1, "b"), (1, "a"), (2, "a"), (2, "b")]


def test_summary_takes_medians_ratios_to_the_baseline_and_keeps_failures():
    def run(name, rate, ok=True):
        return Result(name, THROUGHPUT, 64, rate=rate, ok=ok, error="" if ok else "lost 1 messages")

    results = [run("mp.Queue", r) for r in (100, 300, 200)] + [run("fast", r) for r in (1000, 900, 800)]
    results += [run("broken", 0, ok=False)]
    results += [Result("mp.Queue", LATENCY, 64, latency={"median": 100e3, "p99": 200e3}),
                Result("fast", LATENCY, 64, latency={"median": 25e3, "p99": 50e3})]
    by = {(s.facility, s.scenario): s for s in summarize(results)}
    assert by[("mp.Queue", THROUGHPUT)].rate == 200
    assert by[("fast", THROUGHPUT)].ratio == pytest.approx(4.5)
    assert by[("fast", LATENCY)].ratio == pytest.approx(4.0)
    assert not by[("broken", THROUGHPUT)].ok and by[("broken", THROUGHPUT)].ratio is None


def test_the_mp_queue_ratio_note_comes_only_with_tables_that_have_those_ratios():
    from ringipc.bench.report import print_report

    class Lines:
        def __init__(self):
            self.text = []

        def print(self, obj="", width=None):
            self.text.append(str(obj))

    results = [Result(n, THROUGHPUT, 64, rate=r) for n, r in (("mp.Queue", 100), ("fast", 400))]
    for summaries, noted in (([], False), (summarize(results), True)):  # [] : an asyncio-only run
        console = Lines()
        print_report(console, summaries, [], Settings())
        assert any("Ratios are to mp.Queue" in line for line in console.text) is noted


def test_cpu_plan_puts_producers_and_consumers_apart():
    cpus = cpu_plan(2, 2)
    assert len(cpus) == 4
    if cpus[0] is not None:
        assert not set(cpus[:2]) & set(cpus[2:])


def test_cell_key_names_the_cell():
    assert Cell(_Fake("x"), THROUGHPUT, 64).key == (THROUGHPUT, 64, "x")


def test_a_driver_reports_its_value_or_why_it_failed():
    from ringipc.bench.drivers import run_driver

    # Stdlib callables: a fresh (forkserver) process can import them.
    assert run_driver(float, ("2.5",), "bench-test", 60.0, "forkserver") == (True, 2.5)
    ok, why = run_driver(math.sqrt, (-1.0,), "bench-test", 60.0, "forkserver")
    assert not ok and why.startswith("ValueError")


def test_a_driver_that_times_out_is_killed_with_what_it_started(tmp_path):
    from ringipc.bench.drivers import run_driver

    pidfile = tmp_path / "grandchild"
    # The driver's shell starts a grandchild and waits for it: both must go.
    script = f"sleep 600 & echo $! > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; wait"
    ok, why = run_driver(os.system, (script,), "bench-test", 5.0, "forkserver")
    assert (ok, why) == (False, "timed out after 5 s")
    pid = int(pidfile.read_text())
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # gone and reaped already
    try:  # a pidfd is readable once its process has ended
        assert select.select([fd], [], [], 30)[0], f"the driver's grandchild {pid} outlived it"
    finally:
        os.close(fd)


def test_cells_take_medians_or_the_first_failure():
    from types import SimpleNamespace as R

    from ringipc.bench.drivers import cells

    runs = [R(k="a", ok=True, v=3.0, error=""), R(k="b", ok=False, v=0.0, error="lost one"),
            R(k="a", ok=True, v=1.0, error=""), R(k="b", ok=True, v=5.0, error=""), R(k="a", ok=True, v=2.0, error="")]
    a, b = cells(runs, lambda r: r.k, lambda r: r.v)
    assert (a.key, a.runs, a.ok, a.values, a.median) == ("a", 3, True, [3.0, 1.0, 2.0], 2.0)
    assert (b.key, b.runs, b.ok, b.error, b.values) == ("b", 1, False, "lost one", [])


def _batches(n, size=64, drop=None, corrupt=None, short=None, batch=16):
    """Producer 0's messages 0..n-1 and its stop marker, in batches, with one fault if asked."""
    from ringipc.bench.payload import Payload

    payload = Payload(size)
    msgs = [payload.message_bytes(seq) for seq in range(n) if seq != drop]
    if corrupt is not None:
        m = bytearray(msgs[corrupt]); m[30] ^= 1; msgs[corrupt] = bytes(m)
    if short is not None:
        msgs[short] = msgs[short][:-1]
    msgs.append(payload.stop())
    it = iter([msgs[i:i + batch] for i in range(0, len(msgs), batch)])
    return lambda: next(it)


@pytest.mark.parametrize("most", [0, 1001], ids=["kept", "joined"])
def test_batch_consumer_checks_every_message(most):
    from ringipc.bench.payload import VerificationError, expected_digest

    _, digest = Facility().consumer(None, _batches(1000), 64, most=most)
    assert digest == expected_digest(1, 1000)
    for fault in ({"drop": 500}, {"corrupt": 999}, {"short": 3}):
        with pytest.raises(VerificationError):
            Facility().consumer(None, _batches(1000, **fault), 64, most=most)
