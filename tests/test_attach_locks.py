"""The kernel-kept attach count of named segments (ringipc/core/_attach_locks.py),
on open files of one tmpfs file: each os.open is an open file of its own."""
import os

import pytest

from ringipc.core import _attach_locks as locks

pytestmark = pytest.mark.skipif(not locks.AVAILABLE, reason="no open-file-description locks on this system")


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "segment"
    p.write_bytes(b"\0" * 4096)
    return str(p)


def test_a_lone_holder_is_last_and_sees_a_live_creator_only_through_another_file(path):
    creator = os.open(path, os.O_RDWR)
    other = os.open(path, os.O_RDWR)
    try:
        locks.mark_creator(creator)
        locks.hold_attached(creator)
        locks.hold_attached(other)
        assert not locks.take_last(other)          # the creator is attached
        assert not locks.creator_gone(other)
        assert locks.attached_elsewhere(other)
        os.close(creator)                           # the kernel drops its locks, as at a SIGKILL
        creator = -1
        assert locks.creator_gone(other)
        assert locks.take_last(other)
    finally:
        for fd in (creator, other):
            if fd >= 0:
                os.close(fd)


def test_the_last_holder_keeps_newcomers_out_until_it_has_closed(path):
    last = os.open(path, os.O_RDWR)
    newcomer = os.open(path, os.O_RDWR)
    try:
        locks.hold_attached(last)
        assert locks.take_last(last)
        assert locks.attached_elsewhere(newcomer)  # a newcomer would wait for our decision
        os.close(last)
        last = -1
        locks.hold_attached(newcomer)              # returns at once now
        assert locks.take_last(newcomer)
    finally:
        for fd in (last, newcomer):
            if fd >= 0:
                os.close(fd)


def test_locks_of_one_open_file_are_one_holder(path):
    fd = os.open(path, os.O_RDWR)
    twin = os.dup(fd)   # what a forked child shares: hence the reopen after fork
    try:
        locks.mark_creator(fd)
        locks.hold_attached(fd)
        assert locks.take_last(twin)
        assert locks.creator_gone(twin)  # its own lock never conflicts
    finally:
        os.close(fd)
        os.close(twin)
