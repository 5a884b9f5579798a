"""Suite-wide guard: no test may leave a ringipc segment in /dev/shm."""
import os
import re

import pytest

from ringipc.core._ring import pid_alive

SHM_DIR = "/dev/shm"
# The creator's pid in names ringipc makes up (ringipc-<pid>-<hex>) and in the
# names tests give (ringipc-<tag>-<pid>-...): other test runs on the machine
# are left alone.
_PID_IN_NAME = re.compile(r"^ringipc-(?:[a-z]+-)*(\d+)(?:-|$)")


def _ringipc_segments():
    try:
        return {n for n in os.listdir(SHM_DIR) if n.startswith("ringipc-")}
    except FileNotFoundError:
        return set()


def _ours(name):
    """Segments made by this test run: by this process, or by a child now dead.
    A live foreign pid is another program's (or another test run's) business."""
    match = _PID_IN_NAME.match(name)
    if not match:
        return True
    pid = int(match.group(1))
    return pid == os.getpid() or not pid_alive(pid)


@pytest.fixture(autouse=True)
def no_leaked_segments():
    before = _ringipc_segments()
    yield
    leaked = sorted(n for n in _ringipc_segments() - before if _ours(n))
    for name in leaked:  # remove them so one leak does not fail every later test
        try:
            os.unlink(os.path.join(SHM_DIR, name))
        except FileNotFoundError:
            pass
    assert not leaked, f"test left shared-memory segments behind: {leaked}"


def pytest_terminal_summary(terminalreporter):
    """The recovery matrix's measured times (tests/test_ring_recovery.py), so
    that CI logs show them whether or not the tests passed."""
    from _soak_support import RECOVERY_TIMES, recovery_table

    if RECOVERY_TIMES:
        terminalreporter.section("ring recovery times")
        for line in recovery_table():
            terminalreporter.write_line(line)
