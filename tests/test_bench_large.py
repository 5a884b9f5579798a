"""The bench's ``large`` scenario (ringipc/bench/large.py) on tiny settings:
rows, ratios and JSON appear, and a wrong object fails its row.  Nothing
here looks at a timing."""
import json

import pytest

pytest.importorskip("rich")
pytest.importorskip("numpy", reason="NumPy is optional; the array rows need it (it is in the test extra)")

from ringipc.__main__ import main as ringipc_main  # noqa: E402
from ringipc.bench import large  # noqa: E402


def test_large_scenario_rows_ratios_and_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(large, "QUICK_SIZES", [1 << 20])
    monkeypatch.setattr(large, "QUICK_TOTAL", 4 << 20)
    out_json = tmp_path / "large.json"
    status = ringipc_main(["bench", "--quick", "--scenarios", "large",
                           "--only", "ringipc.Queue,unix:// channel,raw ring,mp.Queue,memcpy*",
                           "--json", str(out_json)])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "Large objects: GB/s" in text and "vs raw ring" in text and "vs mp.Queue" in text
    data = json.loads(out_json.read_text())
    summary = {(s["facility"], s["kind"]): s for s in data["large"]["summary"]}
    names = ("ringipc.Queue", "unix:// channel", "raw ring", "mp.Queue", "memcpy (1 thread)")
    assert set(summary) == {(f, k) for f in names for k in ("numpy", "bytes")}
    assert all(s["ok"] and s["rate"] > 0 and s["size"] == 1 << 20 for s in summary.values())
    assert summary[("raw ring", "bytes")]["vs_ring"] == pytest.approx(1.0)
    assert summary[("mp.Queue", "numpy")]["vs_mp"] == pytest.approx(1.0)
    assert all(r["count"] == large.MIN_OBJECTS + 1 for r in data["large"]["runs"])


@pytest.mark.parametrize("kind", large.KINDS)
def test_a_lost_repeated_or_torn_object_fails_the_check(kind):
    objs = large.objects(kind, 64 << 10)
    large.check(objs[0], kind, 64 << 10, 0)
    large.check(objs[1], kind, 64 << 10, 3)
    with pytest.raises(AssertionError, match="not the one sent"):
        large.check(objs[0], kind, 64 << 10, 1)  # the one before it was lost
    with pytest.raises(AssertionError, match="bytes, expected"):
        large.check(memoryview(objs[0]).cast("B")[:-8], kind, 64 << 10, 0)
    torn = bytearray(memoryview(objs[0]).cast("B"))
    torn[-8:] = memoryview(objs[1]).cast("B")[-8:]
    with pytest.raises(AssertionError, match="not the one sent"):
        large.check(torn, kind, 64 << 10, 0)


def test_missing_peer_rows_are_left_out(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "zmq" else real(name, *a))
    assert large.available("pyzmq copy=False") == "zmq is not installed"
    assert large.available("ringipc.Queue") is None
