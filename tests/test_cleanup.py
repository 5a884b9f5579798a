"""python -m ringipc cleanup: removes what dead creators left, keeps what live
ones use, and keeps what it cannot attribute."""
import os

from _proc_support import left_by_a_killed_creator
from _segment_poke import SHM, unique_name
from ringipc import Ring, cleanup, ls, sync


def test_removes_a_dead_creators_segments_and_keeps_the_rest():
    ring_name, lock_name = unique_name("cleanup-ring"), unique_name("cleanup-probe")
    dead = left_by_a_killed_creator(lambda: [Ring(1 << 14, name=ring_name), sync.Lock(name=lock_name)])
    foreign = f"ringipc-{os.getpid()}-foreign"
    with open(SHM + foreign, "wb") as f:
        f.write(b"not ours to judge" * 100)
    live = Ring(1 << 14, name=unique_name("cleanup-live"))
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


def test_an_orphan_still_attached_is_left_to_its_last_holder():
    held_name = unique_name("cleanup-held")
    [name] = left_by_a_killed_creator(lambda: [Ring(1 << 14, name=held_name)])
    held = Ring.attach(name)
    try:
        listed = {seg["name"]: seg for seg in cleanup.list_segments()}
        assert listed[name]["attached"] and not listed[name]["orphaned"]
        assert name not in cleanup.remove_orphans()
    finally:
        held.close()  # the creator is dead and nobody else holds it: the name goes with us
    assert not os.path.exists(SHM + name)


def _put_large_and_hang(conn):
    import ringipc
    q = ringipc.Queue(capacity=1 << 16)
    q.put(b"x" * (1 << 17))  # over max_message_size: a side segment named after the ring
    conn.send([n for n in os.listdir(SHM) if n.startswith(q._ring.name + "-L")])
    conn.recv()  # SIGKILLed here


def test_a_side_segment_goes_once_its_sender_and_its_ring_are_gone():
    import multiprocessing
    from _proc_support import kill_now
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe()
    child = ctx.Process(target=_put_large_and_hang, args=(child_end,))
    child.start()
    sides = parent_end.recv()
    assert len(sides) == 2 and sum("-bell" in n for n in sides) == 1  # the slab and its pool's bell
    listed = {seg["name"]: seg for seg in cleanup.list_segments()}
    for side in sides:
        assert not listed[side]["orphaned"]  # the sender lives
        shown = {o["name"]: o for o in ls.list_objects()}[side]  # `ringipc ls` names it too
        assert (shown["type"], shown["creator_pid"], shown["orphaned"]) == ("side", child.pid, False)
        assert shown["peers"][0]["alive"] and side.startswith(shown["ring"] + "-L")
    kill_now(child)  # the queue's anonymous ring dies with its only holder
    listed = {seg["name"]: seg for seg in cleanup.list_segments()}
    every = {o["name"]: o for o in ls.list_objects()}
    for side in sides:
        assert listed[side]["orphaned"] and listed[side]["creator_from"] == "side segment"
        shown = every[side]
        assert shown["orphaned"] and not shown["peers"][0]["alive"]
        assert "ORPHANED" in ls.render([shown]) and "large object" in ls.render([shown])
    removed = cleanup.remove_orphans()
    for side in sides:
        assert side in removed
        assert not os.path.exists(SHM + side)
