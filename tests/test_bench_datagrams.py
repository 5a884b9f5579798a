"""The datagram and System V queue bench rows run and verify every message:
ringipc's channels and the hand-written references beside them.  Nothing
here looks at a timing."""
import json

import pytest

pytest.importorskip("rich")

from ringipc.__main__ import main as ringipc_main  # noqa: E402
from ringipc.bench import adapters  # noqa: E402

NAMES = ["unixgram.ringipc", "unixgram.socket", "sysvmq.ringipc", "sysvmq.sysv_ipc"]


def test_selected_by_prefix():
    names = [f.name for f in adapters.select(only="unixgram*,sysvmq*")]
    assert sorted(names) == sorted(NAMES + ["mp.Queue"])
    assert [f.name for f in adapters.select(only="udp*") if f.name != "mp.Queue"] == ["udp.ringipc", "udp.socket"]


def test_quick_run_passes(tmp_path, capsys):
    out_json = tmp_path / "bench.json"
    status = ringipc_main(["bench", "--quick", "--only", "unixgram*,sysvmq*,udp*", "--sizes", "64",
                           "--scenarios", "throughput,latency", "--timeout", "20", "--json", str(out_json)])
    text = capsys.readouterr().out
    assert status == 0, text
    data = json.loads(out_json.read_text())
    ran = {(s["facility"], s["scenario"], s["size"]) for s in data["summary"] if s["ok"]}
    for name in NAMES:
        assert (name, "throughput", 64) in ran
    for name in NAMES + ["udp.ringipc", "udp.socket"]:
        assert (name, "latency", 64) in ran


def test_sizes_over_the_queue_limit_are_skipped_with_the_reason():
    from ringipc.channels.transports.sysvmq import read_limit

    msgmax = read_limit("msgmax")
    for facility in adapters.select(only="sysvmq*"):
        if facility.name == "mp.Queue":
            continue
        ok, why = facility.supports(msgmax + 1)
        assert not ok and "msgmax" in why, (facility.name, why)
        assert facility.supports(64)[0]
