"""One body of Pipe/Connection tests, run against multiprocessing and ringipc alike."""
import array
import multiprocessing
import os
import signal
import threading

import pytest

from _dropin_support import impl, join_all, proc_impl  # noqa: F401  (fixtures)


# -- child-process targets -------------------------------------------------------------
def echo(conn):
    # Stops on a sentinel, not EOF: under fork the child inherits the other end too.
    for msg in iter(conn.recv_bytes, b"STOP"):
        conn.send_bytes(msg)
    conn.close()


def send_then_hang(conn):
    conn.send("hello")
    signal.pause()


def init_conn(conn):
    global _init_conn
    _init_conn = conn


def send_via_init(x):
    _init_conn.send(x)
    return x


# -- single process ----------------------------------------------------------------------
def test_objects_and_bytes(impl):
    a, b = impl.Pipe()
    a.send({"k": [1, 2.5, None]})
    assert b.recv() == {"k": [1, 2.5, None]}
    b.send_bytes(b"abcdefgh", 2, 3)
    assert a.recv_bytes() == b"cde"
    b.send_bytes(b"abcdefgh", 8)
    assert a.recv_bytes() == b""
    b.send_bytes(array.array("i", [1, 2, 3]))
    assert a.recv_bytes() == array.array("i", [1, 2, 3]).tobytes()
    for args in ((-1,), (9,), (2, 7), (0, -1)):
        with pytest.raises(ValueError):
            a.send_bytes(b"abcdefgh", *args)
    a.close()
    b.close()


def test_send_bytes_of_a_strided_buffer_is_refused(impl):
    # multiprocessing raises TypeError up to 16 KiB (and for items wider than a
    # byte) and BufferError above; ringipc's error is both, at every size.
    a, b = impl.Pipe()
    small, wide = memoryview(bytearray(range(16)))[::2], memoryview(array.array("i", range(16)))[::2]
    for buf in (small, wide, memoryview(bytearray(64)).cast("B", (8, 8))[::2]):
        with pytest.raises(TypeError):
            a.send_bytes(buf)
        with pytest.raises(TypeError):
            a.send_bytes(buf, 1, 2)
    a.send_bytes(memoryview(bytearray(b"ok")))  # the pipe is still usable
    assert b.recv_bytes() == b"ok" and not b.poll(0)
    with pytest.raises(BufferError):  # last: multiprocessing has written a header by then
        a.send_bytes(memoryview(bytearray(1 << 17))[::2])
    a.close()
    b.close()


def test_recv_bytes_into_and_buffer_too_short(impl):
    a, b = impl.Pipe()
    buf = array.array("i", [0] * 8)
    a.send_bytes(array.array("i", [7, 8]))
    assert b.recv_bytes_into(buf, 4) == 8
    assert list(buf) == [0, 7, 8, 0, 0, 0, 0, 0]
    a.send_bytes(b"x" * 100)
    with pytest.raises(multiprocessing.BufferTooShort) as info:
        b.recv_bytes_into(bytearray(10))
    assert info.value.args == (b"x" * 100,)
    with pytest.raises(ValueError):
        b.recv_bytes_into(bytearray(10), -1)
    a.close()
    b.close()


def test_maxlength(impl):
    a, b = impl.Pipe()
    a.send_bytes(b"y" * 50)
    with pytest.raises(OSError, match="bad message length"):
        b.recv_bytes(10)
    assert not b.readable and b.writable and not b.closed
    with pytest.raises(OSError):
        b.recv_bytes()
    r, w = impl.Pipe(duplex=False)
    w.send_bytes(b"y" * 50)
    with pytest.raises(OSError, match="bad message length"):
        r.recv_bytes(10)
    assert r.closed
    for end in (a, b, w):
        end.close()


def test_poll_and_eof(impl):
    a, b = impl.Pipe()
    assert b.poll() is False
    assert b.poll(-1) is False
    assert b.poll(0.01) is False
    a.send(1)
    assert b.poll() is True
    assert b.poll(None) is True
    assert b.recv() == 1
    a.send_bytes(b"last")
    a.close()
    assert b.poll(5) is True
    assert b.recv_bytes() == b"last"
    assert b.poll(5) is True  # EOF is readable
    with pytest.raises(EOFError):
        b.recv()
    with pytest.raises(EOFError):
        b.recv_bytes()


def test_send_to_closed_peer(impl):
    a, b = impl.Pipe()
    b.close()
    with pytest.raises(OSError):  # BrokenPipeError on both
        for _ in range(100):
            a.send_bytes(b"z" * 1000)


def test_closed_handle(impl):
    a, b = impl.Pipe()
    with a, b:
        assert not a.closed
        assert isinstance(a.fileno(), int)
    assert a.closed and b.closed
    for call in (a.recv, lambda: a.send(1), a.poll, a.fileno):
        with pytest.raises(OSError):
            call()
    a.close()


def test_half_duplex(impl):
    r, w = impl.Pipe(duplex=False)
    assert (r.readable, r.writable, w.readable, w.writable) == (True, False, False, True)
    w.send("one way")
    assert r.recv() == "one way"
    with pytest.raises(OSError):
        r.send(1)
    with pytest.raises(OSError):
        w.recv()
    with pytest.raises(OSError):
        w.poll()


def test_messages_larger_than_the_ring(impl):
    a, b = impl.Pipe(small=True)
    # A pipe's sender blocks once the kernel buffer is full: read from a thread.
    payloads = [os.urandom(size) for size in (0, 8191, 8192, 8193, 50000, 1 << 20)]
    # a raw message that looks like ringipc's large-object reference is still raw
    payloads.append(b"\x00\xffRIPC-L" + b"\x00" * 8 + b"ringipc-x")
    got = []
    reader = threading.Thread(target=lambda: got.extend(b.recv_bytes() for _ in payloads))
    reader.start()
    for payload in payloads:
        a.send_bytes(payload)
    reader.join()
    assert got == payloads
    reader = threading.Thread(target=lambda: got.append(b.recv()))
    reader.start()
    a.send(list(range(100000)))
    reader.join()
    assert got[-1] == list(range(100000))


def test_wait(impl):
    a, b = impl.Pipe()
    c, d = impl.Pipe()
    assert impl.wait([b, d], 0.01) == []
    a.send(1)
    assert impl.wait([b, d], 10) == [b]
    c.send(2)
    assert set(impl.wait([b, d], 10)) == {b, d}


# -- across processes ------------------------------------------------------------------------
def test_echo_child(proc_impl):
    a, b = proc_impl.Pipe(small=True)
    p = proc_impl.Process(target=echo, args=(b,))
    p.start()
    b.close()
    for size in (0, 10, 9000, 100000):
        a.send_bytes(b"e" * size)
        assert a.recv_bytes() == b"e" * size
    a.send_bytes(b"STOP")
    a.close()
    join_all([p])
    assert p.exitcode == 0


def test_recv_from_dead_peer_raises_eof(proc_impl):
    a, b = proc_impl.Pipe()
    p = proc_impl.Process(target=send_then_hang, args=(b,))
    p.start()
    b.close()
    assert a.recv() == "hello"
    os.kill(p.pid, signal.SIGKILL)
    join_all([p])
    with pytest.raises(EOFError):
        a.recv()


def test_connection_in_pool_initargs(proc_impl):
    a, b = proc_impl.Pipe(duplex=False)
    pool = proc_impl.ctx.Pool(2, initializer=init_conn, initargs=(b,))
    try:
        assert sorted(pool.map(send_via_init, range(6))) == list(range(6))
    finally:
        pool.close()
        pool.join()
    assert sorted(a.recv() for _ in range(6)) == list(range(6))


def test_wait_on_mixed_objects(impl):
    a, b = impl.Pipe()
    c, d = multiprocessing.Pipe()
    assert impl.wait([b, d], 0.01) == []
    c.send("mp")
    assert impl.wait([b, d], 10) == [d]
    a.send("ring")
    assert impl.wait([b, d], 10) == [b, d]
    for end in (a, b, c, d):
        end.close()


def test_poll_runs_signal_handlers(impl):
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        a, b = impl.Pipe()
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        assert b.poll(0.5) is False
        assert fired == [1]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
