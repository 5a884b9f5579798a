"""``python -m ringipc bench`` end to end on tiny settings: output files, failure reporting.

Nothing here looks at a timing: only that the table, JSON and plot appear and
that a facility which loses a message or hangs is reported as FAILED.
"""
import json
import re
import sys
import textwrap

import pytest

pytest.importorskip("rich")

from ringipc.__main__ import main as ringipc_main  # noqa: E402
from ringipc.bench import adapters  # noqa: E402

# Spawned children unpickle a facility by importing its module, so the broken
# facilities live in a real module on sys.path (which spawn passes on), not in
# this test file whose import name depends on pytest's import mode.
BROKEN = textwrap.dedent(
    '''
    from ringipc.bench.adapters.mp import MpPipe


    class Dropper(MpPipe):
        name = "test.dropper"
        scenarios = ("throughput",)  # a dropped ping would only wait for the timeout

        def open_sender(self, end, size):
            calls = [0]

            def send(msg):
                calls[0] += 1
                if calls[0] != 4:  # the fourth message never leaves
                    end.send_bytes(msg)

            return send


    class Raiser(MpPipe):
        name = "test.raiser"
        scenarios = ("throughput",)

        def open_receiver(self, end, size):
            raise RuntimeError("receiver refused to open")


    class Hanger(MpPipe):
        name = "test.hanger"

        def open_sender(self, end, size):
            return lambda msg: None  # nothing, not even the stop marker, arrives
    '''
)


@pytest.fixture
def broken(tmp_path, monkeypatch):
    (tmp_path / "ringipc_bench_broken.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    import ringipc_bench_broken as mod

    facilities = [mod.Dropper(), mod.Raiser(), mod.Hanger()]
    for f in facilities:
        adapters.register(f)
    yield facilities
    for f in facilities:
        adapters.unregister(f)
    sys.modules.pop("ringipc_bench_broken", None)


def test_quick_run_writes_table_json_and_plot_and_reports_failures(tmp_path, capsys, broken):
    pytest.importorskip("matplotlib")
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    argv = ["bench", "--quick", "--only", "os.pipe,ringipc.Ring-spsc,test.*", "--sizes", "64,1K",
            "--scenarios", "throughput,latency,mpmc", "--timeout", "5",
            # spawn: a forkserver started earlier in this process would not see tmp_path on sys.path
            "--start-method", "spawn",
            "--json", str(out_json), "--plot", str(out_png)]

    status = ringipc_main(argv)
    text = capsys.readouterr().out

    assert status == 1, "a failed facility makes the exit status 1"
    assert "Throughput, 1 producer -> 1 consumer" in text
    assert "Round trip of a 64 B message" in text
    assert "Throughput, 2 producers -> 2 consumers" in text
    for name in ("mp.Queue", "os.pipe", "test.dropper", "test.raiser", "test.hanger"):
        assert name in text
    assert "FAILED" in text
    assert "vs mp.Queue" in text

    data = json.loads(out_json.read_text())
    assert data["baseline"] == "mp.Queue"
    assert data["machine"]["cpu_count"] >= 1
    assert "versions" in data and "settings" in data
    summary = {(s["facility"], s["scenario"], s["size"]): s for s in data["summary"]}
    for size in (64, 1024):
        assert summary[("os.pipe", "throughput", size)]["ok"]
        assert summary[("mp.Queue", "throughput", size)]["ratio"] == pytest.approx(1.0)
        dropped = summary[("test.dropper", "throughput", size)]
        assert not dropped["ok"] and dropped["rate"] == 0
        assert "expected 3" in dropped["error"] or "lost 1" in dropped["error"]
    assert summary[("mp.Queue", "mpmc", 64)]["ok"]
    assert summary[("os.pipe", "latency", 64)]["ok"]
    ring = summary.get(("ringipc.Ring-spsc", "throughput", 64))
    assert (ring and ring["ok"]) or any(s["facility"] == "ringipc.Ring-spsc" for s in data["skipped"])
    assert "receiver refused to open" in summary[("test.raiser", "throughput", 64)]["error"]
    assert "timed out" in summary[("test.hanger", "throughput", 64)]["error"]
    # After one timeout the hanging facility is not run again.
    assert "earlier run of this facility timed out" in summary[("test.hanger", "throughput", 1024)]["error"]
    # Every run is recorded, passing or not.
    assert len(data["runs"]) == len(data["summary"])
    assert all(r["ok"] == (r["error"] == "") for r in data["runs"])

    for scenario in ("throughput", "latency", "mpmc"):
        assert (tmp_path / f"bench-{scenario}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / f"bench-{scenario}.svg").read_text().lstrip().startswith("<?xml")
    assert not out_png.exists()  # PATH names the figures' stem


def test_forkserver_default_runs_a_healthy_facility_clean(tmp_path, capsys):
    out_json = tmp_path / "q.json"
    status = ringipc_main(["bench", "--quick", "--only", "os.pipe", "--sizes", "64",
                           "--scenarios", "throughput", "--json", str(out_json)])
    assert status == 0, capsys.readouterr().out
    data = json.loads(out_json.read_text())
    assert data["settings"]["start_method"] == "forkserver"
    assert all(r["ok"] for r in data["runs"])


def test_plot_without_matplotlib_is_a_clear_error_before_running(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    status = ringipc_main(["bench", "--quick", "--plot", str(tmp_path / "x.png")])
    assert status == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_unknown_facility_pattern_is_rejected(capsys):
    assert ringipc_main(["bench", "--only", "no-such-thing"]) == 2
    assert "no facility matches" in capsys.readouterr().err


def test_missing_peer_is_listed_as_skipped(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "zmq", None)
    assert ringipc_main(["bench", "--list", "--only", "zmq-push-pull"]) == 0
    out = capsys.readouterr().out
    assert "zmq-push-pull" in out and "not installed" in out


def test_selection_keeps_the_baseline():
    names = [f.name for f in adapters.select(only="os.pipe")]
    assert names == ["mp.Queue", "os.pipe"]
    assert "mp.Queue" not in [f.name for f in adapters.select(skip="mp.Queue")]


def test_pools_scenario_rows_both_contexts(tmp_path, capsys, monkeypatch):
    from ringipc.bench import pools

    # Small counts: only the table, the JSON and the verification are looked at.
    monkeypatch.setattr(pools, "WORKLOADS", [("trivial", 400, 200), ("1 MiB", 20, 8)])
    out_json = tmp_path / "p.json"
    status = ringipc_main(["bench", "--quick", "--scenarios", "pools", "--only", "*Pool.map",
                           "--json", str(out_json)])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "Process pools" in text and "ringipc-4MiB" in text and "vs mp" in text
    assert "Throughput" not in text  # --only named pool rows: no channel facility ran
    data = json.loads(out_json.read_text())
    summary = {(s["facility"], s["workload"]): s for s in data["pools"]["summary"]}
    assert set(summary) == ({(f"{c} Pool.map", "trivial") for c in ("ringipc", "mp")}
                            | {(f"{c} Pool.map", "1 MiB") for c in ("ringipc", "ringipc-4MiB", "mp")})
    assert all(s["ok"] and s["rate"] > 0 for s in summary.values())
    assert summary[("mp Pool.map", "trivial")]["ratio"] == pytest.approx(1.0)


def test_no_option_is_the_focused_run_and_all_is_the_full_matrix():
    from ringipc.bench import focus
    from ringipc.bench.cli import build_parser, settings_from

    args = build_parser().parse_args([])
    s = settings_from(args)
    assert args.focused and s.sizes == focus.SIZES
    assert s.scenarios == ["throughput", "latency", "mpmc", "locks"]
    for argv in (["--all"], ["--only", "os.pipe"], ["--scenarios", "latency"], ["--sizes", "1K"]):
        args = build_parser().parse_args(argv)
        s = settings_from(args)
        assert not args.focused and s.focus is None, argv
    assert settings_from(build_parser().parse_args(["--all"])).scenarios == ["throughput", "latency", "mpmc",
                                                                             "pools", "large"]
    assert "large" not in settings_from(build_parser().parse_args(["--only", "os.pipe"])).scenarios


def test_locks_scenario_rows_and_json(tmp_path, capsys):
    out_json = tmp_path / "l.json"
    status = ringipc_main(["bench", "--quick", "--scenarios", "locks", "--json", str(out_json)])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "Locks: ns per acquire+release" in text and "vs mp.Lock" in text
    data = json.loads(out_json.read_text())
    summary = {(s["facility"], s["case"]): s for s in data["locks"]["summary"]}
    assert set(summary) == {(lock, case) for lock in ("ringipc.sync.Lock", "mp.Lock")
                            for case in ("uncontended", "contended, 2 processes")}
    assert all(s["ok"] and s["ns"] > 0 for s in summary.values())
    assert summary[("mp.Lock", "uncontended")]["ratio"] == pytest.approx(1.0)


@pytest.fixture
def without_rich(monkeypatch):
    import importlib

    from ringipc.bench import term

    for name in [m for m in sys.modules if m == "rich" or m.startswith("rich.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rich", None)  # import fails as if not installed
    importlib.reload(term)
    assert not term.HAVE_RICH
    yield
    monkeypatch.undo()
    importlib.reload(term)


def test_without_rich_the_tables_are_plain_text(without_rich, capsys):
    status = ringipc_main(["bench", "--quick", "--only", "os.pipe", "--sizes", "64",
                           "--scenarios", "throughput,locks"])
    captured = capsys.readouterr()
    assert status == 0, captured.out + captured.err
    lines = captured.out.splitlines()
    assert "Throughput, 1 producer -> 1 consumer" in lines
    header = next(line for line in lines if line.lstrip().startswith("size"))
    assert "facility" in header and "vs mp.Queue" in header
    assert any(line.split()[:1] == ["os.pipe"] or "os.pipe" in line.split() for line in lines)
    assert "Locks: ns per acquire+release" in lines
    assert "[" not in captured.out.replace("[bench", "")  # no markup left: [red], [/] ...
    assert re.search(r"^\[\d+/\d+\] rep 1/1 ", captured.err, re.M)  # progress went to stderr


def test_asyncio_scenario_rows_and_json(tmp_path, capsys):
    out_json = tmp_path / "a.json"
    status = ringipc_main(["bench", "--quick", "--repeat", "1", "--scenarios", "asyncio", "--json", str(out_json)])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "asyncio, two processes, an event loop in each" in text and "(baseline)" in text
    data = json.loads(out_json.read_text())
    summary = {(s["facility"], s["case"]): s for s in data["asyncio"]["summary"]}
    rtt = {f for f, case in summary if case == "round trip 64 B"}
    assert {"ringipc AsyncRing", "ringipc Pipe", "asyncio streams (unix)"} <= rtt
    assert all(s["ok"] and s["us"] > 0 for s in summary.values())
    assert summary[("asyncio streams (unix)", "round trip 64 B")]["ratio"] == pytest.approx(1.0)
