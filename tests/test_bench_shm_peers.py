"""The optional shared-memory peers (ringipc[bench-peers]): each one that is
installed moves verified messages through the bench; each one that is not
says how to install it."""
import json

import pytest

pytest.importorskip("rich")

from ringipc.__main__ import main as ringipc_main  # noqa: E402
from ringipc.bench.adapters import shm_peers  # noqa: E402

PEERS = {f.name: f for f in shm_peers.FACILITIES}


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_runs_verified_or_says_how_to_install(name, tmp_path, capsys):
    facility = PEERS[name]
    ok, why = facility.available()
    if not ok:
        assert "ringipc[bench-peers]" in why
        return
    scenarios = ",".join(facility.scenarios or ("throughput", "latency"))
    out = tmp_path / "peer.json"
    status = ringipc_main(["bench", "--quick", "--only", name, "--sizes", "64", "--scenarios", scenarios,
                           "--timeout", "30", "--json", str(out)])
    text = capsys.readouterr().out
    assert status == 0, text
    rows = [s for s in json.loads(out.read_text())["summary"] if s["facility"] == name]
    assert {r["scenario"] for r in rows} == set(scenarios.split(","))
    # ok means every message arrived, in order, with every byte checked (ringipc/bench/payload.py).
    assert all(r["ok"] and (r["rate"] > 0 or r["median_ns"] > 0) for r in rows), rows


def test_mpmc_peer_shares_one_queue_between_two_producers_and_two_consumers(tmp_path, capsys):
    if not PEERS["cloudtoid-interprocess"].available()[0]:
        assert "ringipc[bench-peers]" in PEERS["cloudtoid-interprocess"].available()[1]
        return
    out = tmp_path / "mpmc.json"
    status = ringipc_main(["bench", "--quick", "--only", "cloudtoid-interprocess", "--scenarios", "mpmc",
                           "--json", str(out)])
    assert status == 0, capsys.readouterr().out
    (row,) = [s for s in json.loads(out.read_text())["summary"] if s["facility"] == "cloudtoid-interprocess"]
    assert row["ok"] and row["rate"] > 0


@pytest.mark.parametrize("name,module", [("cloudtoid-interprocess", "cloudtoid_interprocess"),
                                         ("slick-queue", "slick_queue_py"), ("kickmsg", "kickmsg"),
                                         ("subetha.SpscRing", "subetha"), ("ecal", "ecal.nanobind_core")])
def test_missing_peer_is_skipped_with_the_extra_to_install(name, module, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, module, None)  # import fails as if not installed
    ok, why = PEERS[name].available()
    assert not ok and "ringipc[bench-peers]" in why and module in why
