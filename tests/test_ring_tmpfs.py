"""A named ring larger than the free space of /dev/shm fails at creation with
a clear error, never with SIGBUS later (Docker's /dev/shm is 64 MiB by
default); an anonymous ring does not live in /dev/shm and is not bound by it."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import ringipc
    ringipc.Ring(capacity=8 << 20).close()
    print("ANONYMOUS CREATED")
    try:
        ringipc.Ring(capacity=8 << 20, name="tmpfs-probe")
    except ringipc.SharedMemoryUnavailable as exc:
        assert isinstance(exc, OSError)
        print("REFUSED", exc)
    else:
        print("CREATED")
    import os
    print("LEFT", sorted(n for n in os.listdir("/dev/shm") if n.startswith("ringipc-")))
""")


def test_ring_larger_than_small_tmpfs_raises_clear_error():
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs over /dev/shm needs root")
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed")
    script = f"mount -t tmpfs -o size=1m tmpfs /dev/shm && exec {sys.executable} -c '{CHILD}'"
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0 and "mount" in result.stderr and "REFUSED" not in result.stdout:
        pytest.skip(f"cannot mount a private tmpfs here: {result.stderr.strip()}")
    assert "ANONYMOUS CREATED" in result.stdout, result.stdout + result.stderr
    assert "REFUSED" in result.stdout, result.stdout + result.stderr
    assert "MiB" in result.stdout and "free" in result.stdout  # names the size asked and the space free
    assert "LEFT []" in result.stdout  # the failed segment was unlinked
