"""The bench's figures: their panels, bars, labels and colours (never pixels)."""
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("matplotlib")

from ringipc.bench import plot  # noqa: E402
from ringipc.bench.locks import CONTENDED, UNCONTENDED, LockSummary  # noqa: E402
from ringipc.bench.runner import LATENCY, MPMC, THROUGHPUT  # noqa: E402
from ringipc.bench.suite import Summary  # noqa: E402


def _tp(name, size, ratio, scenario=THROUGHPUT, ok=True):
    return Summary(name, scenario, size, 1, ok, rate=1000 * ratio, ratio=ratio if ok else None,
                   error="" if ok else "lost 1 messages")


def _lat(name, median_us, p99_us):
    return Summary(name, LATENCY, 64, 1, True, median_ns=median_us * 1e3, p99_ns=p99_us * 1e3,
                   ratio=100 / median_us)


SUMMARIES = [
    _tp("mp.Queue", 64, 1.0), _tp("ringipc.Queue", 64, 6.0), _tp("faster-fifo", 64, 1.1), _tp("os.pipe", 64, 0.9),
    _tp("mp.Queue", 65536, 1.0), _tp("ringipc.Queue", 65536, 2.0), _tp("faster-fifo", 65536, 3.0),
    _tp("broken", 65536, 0, ok=False),
    _tp("mp.Queue", 64, 1.0, MPMC), _tp("ringipc.Ring-mpmc", 64, 9.0, MPMC),
    _lat("mp.Queue", 100, 400), _lat("ringipc.Ring-spsc", 3, 14), _lat("iceoryx2", 20, 9000),
]
LOCKS = [LockSummary(n, c, 3, True, ns=ns, all_ns=[ns], ratio=r)
         for n, c, ns, r in [("ringipc.sync.Lock", UNCONTENDED, 100, 1.5), ("mp.Lock", UNCONTENDED, 150, 1.0),
                             ("ringipc.sync.Lock", CONTENDED, 700, 2.0), ("mp.Lock", CONTENDED, 1400, 1.0)]]


def _bars(ax):
    return [p for p in ax.patches if p.get_height() > 0]


def test_one_figure_per_scenario_with_a_panel_per_size():
    figs = plot.figures(SUMMARIES, LOCKS)
    assert list(figs) == [THROUGHPUT, MPMC, LATENCY, "locks"]
    tp = figs[THROUGHPUT]
    assert [ax.get_title() for ax in tp.axes] == ["64 B messages", "64 KiB messages"]
    assert "1 producer -> 1 consumer" in tp._suptitle.get_text()
    small, large = tp.axes
    # Best at the top (the last y tick), failures at the bottom; one bar per facility.
    assert [t.get_text() for t in small.get_yticklabels()] == ["os.pipe", "mp.Queue", "faster-fifo", "ringipc.Queue"]
    assert [t.get_text() for t in large.get_yticklabels()][0] == "broken"
    assert [round(b.get_width(), 2) for b in _bars(small)] == [0.9, 1.0, 1.1, 6.0]
    assert small.get_xscale() == "log" and "mp.Queue" in small.get_xlabel()
    texts = {t.get_text() for t in small.texts}
    assert {"x6.00", "x1.10", "x1.00"} <= texts
    assert "FAILED" in {t.get_text() for t in large.texts}
    # Colours say what a bar is: ringipc, the fastest peer, another peer, the baseline.
    colour = {t.get_text(): b.get_facecolor()[:3] for t, b in zip(small.get_yticklabels(), _bars(small))}
    from matplotlib.colors import to_rgb

    assert colour["ringipc.Queue"] == pytest.approx(to_rgb(plot.OURS))
    assert colour["faster-fifo"] == pytest.approx(to_rgb(plot.BEST_PEER))
    assert colour["os.pipe"] == pytest.approx(to_rgb(plot.PEER))
    assert colour["mp.Queue"] == pytest.approx(to_rgb(plot.BASE_COLOR))
    assert [t.get_text() for t in tp.legends[0].get_texts()] == ["ringipc", "fastest peer", "other peers",
                                                                  "baseline", "FAILED"]


def test_latency_figure_shows_median_and_p99():
    fig = plot.figures(SUMMARIES)[LATENCY]
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["mp.Queue", "iceoryx2", "ringipc.Ring-spsc"]
    widths = sorted(round(b.get_width()) for b in _bars(ax))
    assert widths == [3, 14, 20, 100, 400, 9000]  # a median and a p99 bar each, in microseconds
    assert {"3.0 us", "p99 14 us", "p99 9000 us"} <= {t.get_text() for t in ax.texts}
    assert "p99" in ax.get_xlabel() and "microseconds" in ax.get_xlabel()


def test_locks_figure_has_both_cases():
    fig = plot.figures([], LOCKS)["locks"]
    assert [ax.get_title() for ax in fig.axes] == [UNCONTENDED, CONTENDED]
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["mp.Lock", "ringipc.sync.Lock"]


def test_files_are_png_and_svg_with_the_labels_as_text(tmp_path):
    written = plot.write_plots(str(tmp_path / "run.png"), SUMMARIES, LOCKS)
    assert sorted(p.rsplit("/", 1)[1] for p in written) == sorted(
        f"run-{n}.{s}" for n in (THROUGHPUT, MPMC, LATENCY, "locks") for s in ("png", "svg"))
    assert (tmp_path / "run-throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    root = ET.parse(tmp_path / "run-throughput.svg").getroot()
    texts = {"".join(t.itertext()).strip() for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"ringipc.Queue", "faster-fifo", "64 KiB messages", "x6.00", "FAILED"} <= texts


def test_no_matplotlib_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(plot.PlotUnavailable, match="pip install 'ringipc\\[bench\\]'"):
        plot.figures(SUMMARIES)
