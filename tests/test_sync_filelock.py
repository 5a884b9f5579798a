"""ringipc.sync.FileLock: shared and exclusive byte-range locks between
processes and between threads of one process, timeouts, and release by the
kernel when the holder dies."""
import multiprocessing
import os
import pickle
import signal

import pytest

from _proc_support import kill_now
from ringipc.sync import FileLock

ctx = multiprocessing.get_context("fork")


def _hold(path, start, length, shared, ready):
    lock = FileLock(path, start, length)
    lock.acquire(shared=shared)
    ready.send(os.getpid())
    signal.pause()


def _holder(path, start=0, length=0, shared=False):
    parent_end, child_end = ctx.Pipe()
    proc = ctx.Process(target=_hold, args=(path, start, length, shared, child_end))
    proc.start()
    assert parent_end.recv() == proc.pid
    return proc


@pytest.fixture
def path(tmp_path):
    return tmp_path / "data"


def test_exclusive_excludes_until_the_holder_dies(path):
    holder = _holder(path)
    lock = FileLock(path)
    try:
        assert not lock.acquire(block=False)
        assert not lock.acquire(shared=True, timeout=0.1)
        assert lock.holder()["mode"] == "exclusive"
        kill_now(holder)  # the kernel drops its locks with its files
        assert lock.acquire(timeout=10) and lock.mode == "exclusive"
        assert lock.holder() is None  # our own lock never blocks us
    finally:
        lock.close()


def test_shared_locks_coexist_and_keep_writers_out(path):
    reader = _holder(path, shared=True)
    lock = FileLock(path)
    try:
        assert lock.acquire(shared=True, block=False)
        assert FileLock(path).acquire(shared=True, block=False)
        lock.release()
        assert not lock.acquire(block=False)  # the other reader still holds it
        kill_now(reader)
        assert lock.acquire(block=False)
    finally:
        lock.close()


def test_byte_ranges_are_independent(path):
    holder = _holder(path, start=0, length=100)
    first, second, whole = FileLock(path, 0, 100), FileLock(path, 100, 100), FileLock(path)
    try:
        assert not first.acquire(block=False)
        assert second.acquire(block=False)  # does not overlap the holder's
        assert not whole.acquire(block=False)
        kill_now(holder)
        assert first.acquire(block=False)
    finally:
        for lock in (first, second, whole):
            lock.close()


def test_two_locks_in_one_process_exclude_each_other(path):
    """Open-file-description locks: two opens of one file, even in one
    process (two threads, two libraries), really exclude each other."""
    a, b = FileLock(path), FileLock(path)
    try:
        assert a.acquire(block=False)
        assert not b.acquire(block=False)
        a.close()  # closing one open drops only its own lock
        assert b.acquire(block=False)
    finally:
        a.close()
        b.close()


def test_conversion_and_context_managers(path):
    lock, other = FileLock(path), FileLock(path)
    try:
        with lock.shared():
            assert other.acquire(shared=True, block=False)
            other.release()
            assert lock.acquire(shared=False, timeout=1)  # upgraded in place: nobody else reads
            assert not other.acquire(shared=True, block=False)
        with pytest.raises(TimeoutError):
            with lock:
                with other.exclusive(timeout=0.05):
                    pass
    finally:
        lock.close()
        other.close()


def test_bad_use(path):
    lock = FileLock(path)
    with pytest.raises(ValueError, match="not held"):
        lock.release()
    with pytest.raises(ValueError):
        FileLock(path, -1)
    again = pickle.loads(pickle.dumps(lock))
    assert (again.path, again.mode) == (lock.path, None)
    again.close()
    lock.close()
    with pytest.raises(ValueError, match="closed"):
        lock.acquire()
    assert os.stat(path).st_mode & 0o777 == 0o600
