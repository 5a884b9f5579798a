"""python -m ringipc ls: lists the objects of a running multi-process workload
with the right counts and peers, survives corrupt and half-created segments,
and never changes what it looks at."""
import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from _segment_poke import SHM
from ringipc import Queue, Ring, ls, sync

ctx = multiprocessing.get_context("fork")


def _entry(name):
    return {o["name"]: o for o in ls.list_objects()}[name]


def _until(predicate, limit=30.0):
    """Poll an observable state (another process's progress) up to `limit` seconds."""
    give_up = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < give_up, "the state never appeared"
        os.sched_yield()


def _produce(ring, n, conn):
    for i in range(n):
        ring.send_bytes(b"%d" % i * 10)
    conn.send(b"sent")
    conn.recv()  # stays attached until the test has looked


def _consume_forever(ring):
    while True:
        ring.recv_bytes()


def test_counts_and_peers_of_a_running_workload():
    with Ring(1 << 16, "mpmc") as ring:
        parent_end, child_end = ctx.Pipe()
        producer = ctx.Process(target=_produce, args=(ring, 25, child_end))
        producer.start()
        parent_end.recv()
        entry = _entry(ring.name)
        parent_end.send(b"done")
        assert entry["kind"] == "mpmc" and entry["capacity"] == 1 << 16
        assert entry["messages_waiting"] == 25 and entry["messages_waiting_exact"]
        assert entry["bytes_in"] == entry["head"] * 64 and entry["bytes_out"] == 0
        assert {p["pid"] for p in entry["peers"] if p["alive"]} >= {producer.pid}
        producer.join()
        for _ in range(25):
            ring.recv_bytes()
        consumer = ctx.Process(target=_consume_forever, args=(ring,))
        consumer.start()
        try:
            # The consumer drains nothing more and goes to sleep: ls says so.
            _until(lambda: _entry(ring.name)["readers_asleep"] == 1)
            roles = {p["pid"]: p["role"] for p in _entry(ring.name)["peers"]}
            assert "asleep-reading" in roles[consumer.pid]
            assert _entry(ring.name)["messages_waiting"] == 0
        finally:
            consumer.kill()
            consumer.join()
        dead = {p["pid"]: p for p in _entry(ring.name)["peers"]}[consumer.pid]
        assert not dead["alive"] and dead["name"] == "(dead)"


def test_topics_are_listed_with_their_subscribers():
    from ringipc import Topic

    with Topic(capacity=1 << 16, policy="lossless") as topic:
        pub, sub, late = topic.publisher(), topic.subscribe(), topic.subscribe()
        for i in range(10):
            pub.send_bytes(b"%d" % i * 20)
        for _ in range(4):
            sub.recv_bytes(timeout=5)
        entry = _entry(topic.name)
        assert (entry["type"], entry["kind"], entry["published"]) == ("topic", "lossless", 10)
        behind = sorted(p["behind_bytes"] for p in entry["subscribers"])
        assert behind[0] < behind[1] and len(entry["publishers"]) == 1
        roles = [p["role"] for p in entry["peers"]]
        assert sum(r.startswith("subscriber") for r in roles) == 2 and "publisher" in roles
        assert "10 published" in ls.render([entry])
        for handle in (pub, sub, late):
            handle.close()
    with Topic(capacity=1 << 16, policy="latest") as topic:
        sub = topic.subscribe()
        entry = _entry(topic.name)
        assert entry["kind"] == "latest" and entry["subscribers"][0]["behind_bytes"] is None  # not kept there
        sub.close()


def test_primitives_and_queues_are_listed():
    q, lock, sem = Queue(), sync.Lock(), sync.BoundedSemaphore(3)
    try:
        q.put("x")
        lock.acquire()
        sem.acquire()
        objects = {o["name"]: o for o in ls.list_objects()}
        assert objects[lock.name]["holder_pid"] == os.getpid()
        assert (objects[sem.name]["value"], objects[sem.name]["bound"]) == (2, 3)
        rings = [o for o in objects.values() if o.get("type") == "ring" and o["creator_pid"] == os.getpid()]
        assert any(o["messages_waiting"] == 1 for o in rings)
    finally:
        q.close()
        lock.close()
        sem.close()


@pytest.mark.parametrize("content", [b"", os.urandom(4096), b"RINGIPC1" + os.urandom(8000)],
                         ids=["empty", "random", "ring-magic-garbage"])
def test_corrupt_and_half_created_segments_are_listed_not_trusted(content):
    name = f"ringipc-{os.getpid()}-lsprobe"
    with open(SHM + name, "wb") as f:
        f.write(content)
    try:
        entry = _entry(name)
        assert entry["type"] == "unrecognised" and entry["error"]
        with open(SHM + name, "rb") as f:
            assert f.read() == content  # looked at, not touched
    finally:
        os.unlink(SHM + name)


def test_a_ring_with_garbage_owner_words_is_listed_as_unrecognised():
    from _segment_poke import Poke

    with Ring(1 << 14) as ring:
        ring.send_bytes(b"x")  # this process takes a slot
        poke = Poke(ring)
        try:
            poke.u64(poke.slot(0) + poke.layout["slot_owner"], 0xFFFFFFF0_FFFFFFF0)
            entry = _entry(ring.name)
            assert entry["type"] == "unrecognised" and "out of range" in entry["error"]
        finally:
            poke.u64(poke.slot(0) + poke.layout["slot_owner"], 0)
            poke.close()


def test_looking_changes_nothing():
    with Ring(1 << 14) as ring:
        ring.send_bytes_many([b"a" * 100] * 7)
        with open(ring._debug_segment_path(), "rb") as f:
            before = hashlib.sha256(f.read()).digest()
        for _ in range(3):
            ls.list_objects()
        with open(ring._debug_segment_path(), "rb") as f:
            assert hashlib.sha256(f.read()).digest() == before


def test_cli_json_and_text():
    with Ring(1 << 14) as ring:
        ring.send_bytes(b"one")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        out = subprocess.run([sys.executable, "-m", "ringipc", "ls", "--json"], capture_output=True, text=True,
                             timeout=60, env=env, check=True).stdout
        assert {o["name"]: o for o in json.loads(out)}[ring.name]["messages_waiting"] == 1
        text = subprocess.run([sys.executable, "-m", "ringipc", "ls"], capture_output=True, text=True,
                              timeout=60, env=env, check=True).stdout
        assert ring.name in text and "1 msgs waiting" in text
