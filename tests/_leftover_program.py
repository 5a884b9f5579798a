"""A program that makes every kind of ringipc object without a name and hands
them to two children; tests/test_nothing_left_behind.py ends it in every way
a program ends and looks at what it left in /dev/shm.

    python _leftover_program.py START_METHOD ENDING

Prints ``READY <parent pid> <child pid> <child pid>`` once both children have
used every object; ENDING "normal" then finishes and exits normally, any other
value waits to be killed.
"""
import os
import sys

import ringipc
from ringipc import sync


def make_objects():
    a, b = ringipc.Pipe()
    writer, reader = ringipc.stream_pair(1 << 16)
    topic = ringipc.Topic(capacity=1 << 16)
    return {
        "queue": ringipc.Queue(maxsize=100),
        "simple": ringipc.SimpleQueue(),
        "joinable": ringipc.JoinableQueue(),
        "pipe": (a, b),
        "stream": (writer, reader),
        "ring": ringipc.Ring(1 << 16),
        "lock": sync.Lock(),
        "semaphore": sync.Semaphore(3),
        "event": sync.Event(),
        "topic": topic,
        "subscriber": topic.subscribe(),
        "done": sync.Event(),
        "report": ringipc.Queue(),
    }


def child(objs, index):
    objs["queue"].put(("q", index))
    objs["simple"].put(("s", index))
    objs["joinable"].put(("j", index))
    objs["pipe"][1].send(index)
    objs["stream"][0].write(b"%d" % index)
    objs["stream"][0].flush()
    objs["ring"].send_bytes(b"r%d" % index)
    with objs["lock"]:
        pass
    objs["semaphore"].acquire()
    objs["event"].set()
    objs["topic"].publisher().send_bytes(b"t%d" % index)
    objs["report"].put(os.getpid())
    objs["done"].wait()   # until the parent ends normally, or forever


def parent(method, ending):
    ctx = ringipc.get_context(method)
    objs = make_objects()
    children = [ctx.Process(target=child, args=(objs, i)) for i in range(2)]
    for p in children:
        p.start()
    pids = [objs["report"].get(timeout=120) for _ in children]
    got = sorted(objs["queue"].get(timeout=60) for _ in children)
    assert got == [("q", 0), ("q", 1)], got
    assert sorted(objs["pipe"][0].recv() for _ in children) == [0, 1]
    assert sorted(objs["ring"].recv_bytes() for _ in children) == [b"r0", b"r1"]
    assert sorted(objs["subscriber"].recv_bytes() for _ in children) == [b"t0", b"t1"]
    print("READY", os.getpid(), *pids, flush=True)
    if ending == "normal":
        objs["done"].set()
        for p in children:
            p.join(60)
            assert p.exitcode == 0, p.exitcode
        return
    objs["done"].wait()  # killed here


if __name__ == "__main__":
    parent(sys.argv[1], sys.argv[2])
