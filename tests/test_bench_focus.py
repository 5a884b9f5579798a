"""The focused default run: which rows it picks, without running anything."""
from ringipc.bench import focus
from ringipc.bench.adapters.base import Facility
from ringipc.bench.runner import LATENCY, MPMC, THROUGHPUT
from ringipc.bench.suite import Settings, plan


class _Fake(Facility):
    def __init__(self, name, ok=True, mpmc=True):
        self.name, self._ok, self.mpmc = name, ok, mpmc

    def available(self):
        if self._ok is None:
            raise RuntimeError("broken package")
        return (True, "") if self._ok else (False, "not installed")


def _names(*spec):
    return [_Fake(n, ok) for n, ok in spec]


def test_each_ringipc_facility_meets_its_first_available_peer_and_the_baseline():
    fs = _names(("ringipc.Queue", True), ("ringipc.Ring-spsc", True), ("ringipc.Ring-mpmc", True),
                ("ringipc.Pipe", True), ("mp.Queue", True), ("mp.SimpleQueue", True), ("faster-fifo", False),
                ("iceoryx2", None), ("os.pipe", True), ("zmq-push-pull", True), ("posix-mq", True))
    chosen, scenarios = focus.select(fs)
    assert scenarios[THROUGHPUT] == ["ringipc.Queue", "mp.SimpleQueue", "ringipc.Ring-spsc", "os.pipe", "mp.Queue"]
    assert scenarios[LATENCY] == scenarios[THROUGHPUT]
    assert scenarios[MPMC] == ["ringipc.Queue", "posix-mq", "ringipc.Ring-mpmc", "zmq-push-pull", "mp.Queue"]
    assert "ringipc.Pipe" not in [f.name for f in chosen] and "faster-fifo" not in [f.name for f in chosen]


def test_plan_runs_only_the_focused_cells():
    fs = _names(("ringipc.Queue", True), ("ringipc.Ring-spsc", True), ("os.pipe", True), ("mp.Queue", True))
    chosen, scenarios = focus.select(fs)
    cells, _ = plan(chosen, Settings(sizes=focus.SIZES, scenarios=[THROUGHPUT, LATENCY, MPMC], focus=scenarios))
    got = {(c.scenario, c.size, c.facility.name) for c in cells}
    tp = {(THROUGHPUT, size, n) for size in focus.SIZES for n in ("ringipc.Queue", "ringipc.Ring-spsc", "os.pipe",
                                                                    "mp.Queue")}
    lat = {(LATENCY, 64, n) for n in ("ringipc.Queue", "ringipc.Ring-spsc", "os.pipe", "mp.Queue")}
    mpmc = {(MPMC, 64, n) for n in ("ringipc.Queue", "mp.Queue")}  # the spsc ring and os.pipe are not in mpmc
    assert got == tp | lat | mpmc
