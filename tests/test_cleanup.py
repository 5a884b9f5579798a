"""python -m ringipc cleanup: removes what dead creators left, keeps what live
ones use, and keeps what it cannot attribute."""
import os

from _proc_support import left_by_a_killed_creator
from _segment_poke import SHM
from ringipc import Ring, cleanup, sync


def test_removes_a_dead_creators_segments_and_keeps_the_rest():
    dead = left_by_a_killed_creator(lambda: [Ring(1 << 14), sync.Lock(name=f"cleanup-probe-{os.getpid()}")])
    foreign = f"ringipc-foreign-{os.getpid()}"
    with open(SHM + foreign, "wb") as f:
        f.write(b"not ours to judge" * 100)
    live = Ring(1 << 14)
    try:
        listed = {seg["name"]: seg for seg in cleanup.list_segments()}
        assert all(listed[name]["orphaned"] and listed[name]["creator_from"] == "header" for name in dead)
        assert not listed[live.name]["orphaned"]
        assert listed[foreign]["creator_pid"] is None and not listed[foreign]["orphaned"]
        assert set(dead) <= set(cleanup.remove_orphans(dry_run=True))
        assert all(os.path.exists(SHM + name) for name in dead)  # a dry run removes nothing
        removed = cleanup.remove_orphans()
        assert set(dead) <= set(removed) and live.name not in removed and foreign not in removed
        assert not any(os.path.exists(SHM + name) for name in dead)
        assert os.path.exists(SHM + live.name) and os.path.exists(SHM + foreign)
    finally:
        live.close()
        os.unlink(SHM + foreign)
        for name in dead:
            if os.path.exists(SHM + name):
                os.unlink(SHM + name)
