"""ringipc.Topic: the API in one process and across fork/spawn children."""
import multiprocessing as mp
import os
import pickle
import queue
import signal
import stat
import threading
import time

import pytest

from _proc_support import reap, until_asleep_in
from _segment_poke import unique_name
from ringipc import (
    BufferTooShort,
    ChannelClosed,
    CorruptSegment,
    MessageOverwritten,
    MessageTooLarge,
    Publisher,
    Ring,
    Subscriber,
    Topic,
)
from ringipc import cleanup
from ringipc.topic._topic import _debug_state

POLICIES = ["lossless", "drop-oldest", "latest"]


@pytest.fixture(params=POLICIES)
def topic(request):
    with Topic(capacity=4096, policy=request.param) as t:
        yield t


def test_every_subscriber_gets_every_message(topic):
    pub = topic.publisher()
    subs = [topic.subscribe() for _ in range(3)]
    if topic.policy == "latest":
        for i in range(5):
            pub.send_bytes(b"v%d" % i)
        for s in subs:
            assert s.recv_bytes() == b"v4"
            assert s.seq == 4 and s.missed == 4
            with pytest.raises(queue.Empty):
                s.recv_bytes(block=False)
        return
    for i in range(20):
        pub.send_bytes(b"m%d" % i)
    for s in subs:
        assert [s.recv_bytes() for _ in range(20)] == [b"m%d" % i for i in range(20)]
        assert s.seq == 19 and s.missed == 0
        with pytest.raises(queue.Empty):
            s.recv_bytes(block=False)


def test_objects_sizes_and_empty_messages(topic):
    pub, sub = topic.publisher(), topic.subscribe()
    for obj in [b"", {"a": [1, 2]}, "x" * 2000, None]:
        pub.send(obj)
        assert sub.recv(timeout=1) == obj
    pub.send_bytes(bytearray(b"0123456789"), offset=2, size=3)
    assert sub.recv_bytes() == b"234"
    pub.send_bytes(memoryview(b"q" * topic.max_message_size))
    assert sub.recv_bytes() == b"q" * topic.max_message_size
    with pytest.raises(MessageTooLarge):
        pub.send_bytes(b"q" * (topic.max_message_size + 1))


def test_history_for_late_subscribers():
    with Topic(capacity=8192, policy="lossless") as t:
        pub = t.publisher()
        for i in range(10):
            pub.send_bytes(b"%d" % i)
        now = t.subscribe()
        last3 = t.subscribe(history=3)
        everything = t.subscribe(history=1000)
        with pytest.raises(queue.Empty):
            now.recv_bytes(block=False)
        assert [last3.recv_bytes() for _ in range(3)] == [b"7", b"8", b"9"]
        assert [everything.recv_bytes() for _ in range(10)] == [b"%d" % i for i in range(10)]
        pub.send_bytes(b"10")
        assert now.recv_bytes() == last3.recv_bytes() == everything.recv_bytes() == b"10"


def test_history_only_reaches_what_is_retained():
    with Topic(capacity=1024, policy="drop-oldest") as t:
        pub = t.publisher()
        for i in range(100):
            pub.send_bytes(bytes([i]) * 100)  # 2 cells each: ~8 retained
        sub = t.subscribe(history=100)
        got = []
        while True:
            try:
                got.append(sub.recv_bytes(block=False)[0])
            except queue.Empty:
                break
        assert 0 < len(got) < 100 and got == list(range(100 - len(got), 100))


def test_latest_history_gives_the_current_value_at_once():
    with Topic(capacity=4096, policy="latest") as t:
        pub = t.publisher()
        pub.send(("state", 1))
        pub.send(("state", 2))
        assert t.subscribe(history=1).recv(block=False) == ("state", 2)
        fresh = t.subscribe()
        with pytest.raises(queue.Empty):
            fresh.recv(block=False)


def test_drop_oldest_counts_what_a_slow_subscriber_missed():
    with Topic(capacity=1024, policy="drop-oldest") as t:
        pub, sub = t.publisher(), t.subscribe()
        for i in range(1000):
            pub.send_bytes(i.to_bytes(4, "little"))  # publishers never wait
        first = int.from_bytes(sub.recv_bytes(), "little")
        assert first > 0 and sub.missed == first and sub.seq == first
        rest = [int.from_bytes(sub.recv_bytes(), "little") for _ in range(999 - first)]
        assert rest == list(range(first + 1, 1000)) and sub.missed == first


def test_lossless_publisher_waits_for_the_slowest_subscriber():
    with Topic(capacity=1024, policy="lossless") as t:
        pub, fast, slow = t.publisher(), t.subscribe(), t.subscribe()
        sent = 0
        with pytest.raises(queue.Full):
            while True:
                pub.send_bytes(b"x" * 60, block=False)
                sent += 1
                fast.recv_bytes()
        assert 0 < sent <= 16
        with pytest.raises(queue.Full):
            pub.send_bytes(b"x", timeout=0.05)
        slow.recv_bytes()
        pub.send_bytes(b"y", timeout=1)
        slow.close()  # a closed subscriber stops holding publishers back
        for _ in range(100):
            pub.send_bytes(b"z", timeout=1)
            fast.recv_bytes()


def test_recv_bytes_into_and_buffer_too_short(topic):
    pub, sub = topic.publisher(), topic.subscribe()
    buf = bytearray(16)
    pub.send_bytes(b"hello")
    assert sub.recv_bytes_into(buf, 4) == 5 and buf[4:9] == b"hello"
    pub.send_bytes(b"x" * 40)
    with pytest.raises(BufferTooShort) as info:
        sub.recv_bytes_into(buf)
    assert info.value.args[0] == b"x" * 40
    with pytest.raises(TypeError):
        sub.recv_bytes_into(b"read-only")


def test_recv_view_lossless_holds_publishers_back():
    with Topic(capacity=1024, policy="lossless") as t:
        pub, sub = t.publisher(), t.subscribe()
        pub.send_bytes(b"a" * 500)
        with sub.recv_view() as view:
            assert bytes(view) == b"a" * 500 and view.seq == 0
            with pytest.raises(Exception):
                sub.recv_bytes(block=False)  # one open view per handle
            with pytest.raises(queue.Full):
                for _ in range(3):
                    pub.send_bytes(b"b" * 500, block=False)
            assert bytes(view) == b"a" * 500
        assert sub.recv_bytes() == b"b" * 500


def test_recv_view_drop_oldest_reports_an_overwrite():
    with Topic(capacity=1024, policy="drop-oldest") as t:
        pub, sub = t.publisher(), t.subscribe()
        pub.send_bytes(b"a" * 300)
        view = sub.recv_view()
        assert view.tobytes() == b"a" * 300
        for _ in range(4):
            pub.send_bytes(b"b" * 300)  # laps the open view
        with pytest.raises(MessageOverwritten):
            view.release()
        pub.send_bytes(b"c")
        with sub.recv_view() as v2:  # an intact one releases quietly
            assert bytes(v2)[-1:] in (b"b", b"c")


def test_timeouts_and_poll(topic):
    pub, sub = topic.publisher(), topic.subscribe()
    start = time.monotonic()
    with pytest.raises(queue.Empty):
        sub.recv_bytes(timeout=0.1)
    assert time.monotonic() - start >= 0.1
    assert not sub.poll()
    assert not sub.poll(0.05)
    pub.send_bytes(b"x")
    assert sub.poll() and sub.poll(None)
    assert sub.recv_bytes() == b"x"


def test_a_blocked_recv_wakes_for_a_publish_from_another_thread(topic):
    pub, sub = topic.publisher(), topic.subscribe()
    got = []
    th = threading.Thread(target=lambda: got.append(sub.recv_bytes(timeout=30)))
    th.start()
    until_asleep_in(f"/proc/self/task/{th.native_id}", "futex")
    pub.send_bytes(b"wake")
    th.join()
    assert got == [b"wake"]


def test_closed_handles_and_topics(topic):
    pub, sub = topic.publisher(), topic.subscribe()
    pub.close()
    sub.close()
    with pytest.raises(ChannelClosed):
        pub.send_bytes(b"x")
    with pytest.raises(ChannelClosed):
        sub.recv_bytes(block=False)
    topic.close()
    topic.close()
    with pytest.raises(ChannelClosed):
        topic.subscribe()


def test_segment_is_private_listed_and_gone_after_close():
    t = Topic(capacity=4096, name=unique_name())
    path = os.path.join("/dev/shm", t.name)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    listed = [s for s in cleanup.list_segments() if s["name"] == t.name]
    assert listed and listed[0]["creator_pid"] == os.getpid() and listed[0]["creator_from"] == "header"
    assert not listed[0]["orphaned"]
    t.close()
    assert not os.path.exists(path)


def test_attach_by_name_and_foreign_segments():
    with Topic(name=f"topic-test-{os.getpid()}", capacity=4096, policy="drop-oldest") as t:
        other = Topic.attach(t.name)
        assert other.policy == "drop-oldest" and other.capacity == t.capacity
        sub = other.subscribe()
        t.publisher().send_bytes(b"hi")
        assert sub.recv_bytes() == b"hi"
        with pytest.raises(CorruptSegment):
            Ring.attach(t.name)  # a ring refuses a topic's segment ...
    with Ring(capacity=4096, name=unique_name()) as r:
        with pytest.raises(CorruptSegment):
            Topic.attach(r.name)  # ... and a topic a ring's
    with pytest.raises(FileNotFoundError):
        Topic.attach("no-such-topic-here")


def test_invalid_arguments():
    with pytest.raises(ValueError):
        Topic(policy="newest")
    with pytest.raises(ValueError):
        Topic(capacity=0)
    with Topic(capacity=4096) as t:
        with pytest.raises(ValueError):
            t.subscribe(history=-1)


def test_slots_are_limited_and_given_back():
    with Topic(capacity=4096, policy="drop-oldest") as t:
        subs = [t.subscribe() for _ in range(128)]
        with pytest.raises(Exception, match="more than 128"):
            t.subscribe()
        assert t.subscribers == 128
        subs.pop().close()
        t.subscribe()


# -- children ------------------------------------------------------------------

def _child_reads(sub, n, out):
    out.put([sub.recv(timeout=30) for _ in range(n)])
    out.put(sub.missed)


def _child_publishes(pub, n):
    for i in range(n):
        pub.send(("from child", i), timeout=30)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_handles_pickle_into_children(method):
    ctx = mp.get_context(method)
    with Topic(capacity=4096, policy="lossless") as t:
        pub = t.publisher()
        sub = t.subscribe()
        pub.send("before")
        out = ctx.Queue()
        child = ctx.Process(target=_child_reads, args=(sub, 3, out))
        child.start()
        # The child's copy starts where this subscriber is.
        pub.send("after 1")
        pub.send("after 2")
        got = out.get(timeout=60)
        assert got == ["before", "after 1", "after 2"] and out.get(timeout=60) == 0
        reap(child)
        assert child.exitcode == 0
        mine = t.subscribe()
        writer = ctx.Process(target=_child_publishes, args=(t.publisher(), 5))
        writer.start()
        assert [mine.recv(timeout=60) for _ in range(5)] == [("from child", i) for i in range(5)]
        reap(writer)
        assert writer.exitcode == 0


def test_topic_pickles_as_attach():
    with Topic(capacity=4096, name=unique_name()) as t:
        again = pickle.loads(pickle.dumps(t))
        assert isinstance(again, Topic) and again.name == t.name and not again.creator
        assert isinstance(t.publisher(), Publisher) and isinstance(t.subscribe(), Subscriber)


CTRL_C_CHILD = """
import sys, ringipc
t = ringipc.Topic.attach(sys.argv[1])
sub = t.subscribe()
print("ready", flush=True)
try:
    sub.recv_bytes()
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_interrupts_a_blocked_recv():
    import subprocess
    import sys

    with Topic(capacity=4096, name=unique_name()) as t:
        proc = subprocess.Popen([sys.executable, "-c", CTRL_C_CHILD, t.name], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            until_asleep_in(f"/proc/{proc.pid}", "futex")
            proc.send_signal(signal.SIGINT)
            assert proc.stdout.readline().strip() == "interrupted"
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_debug_state_reports_positions():
    with Topic(capacity=4096) as t:
        t.publisher().send_bytes(b"x" * 100)
        st = _debug_state(t)
        assert st["head"] == 2 and st["tail"] == 0 and st["last"] == 0 and st["next_seq"] == 1
        assert st["pub_owner"] == 0
