"""The fan-out bench scenarios: planned only for fan-out facilities, and a
ringipc.Topic round (and the raw ring's, one ring per subscriber) delivers
every message to every subscriber."""
import pytest

from ringipc.bench import adapters, suite
from ringipc.bench.adapters.fanout import MpQueuePerSubscriber, RingPerSubscriber, TopicFanout
from ringipc.bench.fanout import FANOUT, FANOUT_BASELINE, is_fanout, title as fanout_title
from ringipc.bench.runner import THROUGHPUT, Result, run_once


def test_fanout_cells_only_for_fanout_facilities():
    settings = suite.Settings(scenarios=[THROUGHPUT, FANOUT], sizes=[64])
    cells, _ = suite.plan(adapters.select(only="ringipc.Topic,ringipc.Ring-spsc"), settings)
    shapes = {(c.facility.name, c.scenario, c.size, c.consumers) for c in cells}
    assert ("ringipc.Topic", "fanout-4", 1 << 20, 4) in shapes
    assert ("ringipc.Topic", "fanout-1", 64, 1) in shapes
    assert (FANOUT_BASELINE, "fanout-4", 64, 4) in shapes
    assert not any(name == "ringipc.Topic" and not is_fanout(s) for name, s, _, _ in shapes)
    assert not any(name == "ringipc.Ring-spsc" and is_fanout(s) for name, s, _, _ in shapes)
    # The raw ring doing the same fan-out (one ring per subscriber): Topic's yardstick.
    cells, _ = suite.plan(adapters.select(only="ringipc.Rings-*"), settings)
    assert ("ringipc.Rings-per-sub", "fanout-4", 1 << 20, 4) in {
        (c.facility.name, c.scenario, c.size, c.consumers) for c in cells}


@pytest.mark.parametrize("facility", [TopicFanout(), RingPerSubscriber(), MpQueuePerSubscriber()], ids=lambda f: f.name)
def test_fanout_round_counts_every_delivery(facility):
    res = run_once(facility, "fanout-4", 64, 2000, producers=1, consumers=4, timeout=60,
                   start_method="forkserver")
    assert res.ok, res.error
    assert res.messages == 4 * 2000 and res.rate > 0


@pytest.mark.parametrize("facility", [TopicFanout(), RingPerSubscriber(), MpQueuePerSubscriber()], ids=lambda f: f.name)
def test_fanout_latency_round_times_the_last_subscriber(facility):
    res = run_once(facility, "fanout-lat-4", 64, 300, producers=1, consumers=4, timeout=60,
                   start_method="forkserver")
    assert res.ok, res.error
    assert res.messages == 300
    lat = res.latency
    assert 0 < lat["min"] <= lat["median"] <= lat["p99"] <= lat["max"]


def test_fanout_latency_row_is_planned_and_reported():
    settings = suite.Settings(scenarios=[FANOUT], sizes=[64])
    cells, _ = suite.plan(adapters.select(only="ringipc.Topic"), settings)
    assert ("fanout-lat-4", 64, 4) in {(c.scenario, c.size, c.consumers) for c in cells}
    ok = Result("ringipc.Topic", "fanout-lat-4", 64, 1, 4, messages=3, seconds=3e-6,
                latency={"median": 1000, "p99": 2000, "mean": 1000, "min": 900, "max": 2100})
    s, = suite.summarize([ok])
    assert (s.median_ns, s.p99_ns) == (1000, 2000)
    assert "latency" in fanout_title("fanout-lat-4")
