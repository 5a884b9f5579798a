"""python -m ringipc doctor: right verdicts and exit status on this machine, on
a 1 MiB /dev/shm, with lowered mq limits (both in namespaces this test makes,
as root), and with an orphan left by a SIGKILLed creator."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from _proc_support import left_by_a_killed_creator
from _segment_poke import unique_name
from ringipc import Ring, doctor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _doctor(*wrapper, shell_prefix=""):
    """Run the doctor (inside `wrapper`, e.g. unshare, after `shell_prefix`) and parse its JSON."""
    command = f"{shell_prefix}exec {sys.executable} -m ringipc doctor --json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    done = subprocess.run([*wrapper, "sh", "-c", command], capture_output=True, text=True, timeout=120, env=env)
    report = json.loads(done.stdout)
    return done.returncode, {c["name"]: c for c in report["checks"]}, report


def test_this_machine_verdicts_agree_with_the_exit_status():
    status, checks, report = _doctor()
    assert set(checks) == {"shared memory", "leftover segments", "POSIX message queues", "open files",
                           "wait backend", "CPUs", "process namespaces"}
    assert all(c["verdict"] in ("ok", "info", "warn", "fail") and c["found"] for c in checks.values())
    failed = any(c["verdict"] == "fail" for c in checks.values())
    assert status == (1 if failed else 0) and report["ok"] is not failed
    assert all(c["fix"] for c in checks.values() if c["verdict"] in ("warn", "fail"))


def test_an_orphan_is_reported_with_the_cleanup_command():
    orphan = unique_name("doctor-orphan")
    (name,) = left_by_a_killed_creator(lambda: [Ring(1 << 16, name=orphan)])
    try:
        check = doctor.check_orphans()
        assert check.verdict == "warn" and name in check.found and "ringipc cleanup" in check.fix
    finally:
        os.unlink(f"/dev/shm/{name}")


def test_missing_or_tiny_shm(tmp_path):
    assert doctor.check_shm(str(tmp_path / "absent")).verdict == "fail"
    assert doctor.largest_ring_capacity(1 << 20) < (1 << 20)
    assert doctor.largest_ring_capacity(100) == 0


def test_lowered_mq_limits(tmp_path):
    for name, value in (("msg_max", 10), ("msgsize_max", 1024), ("queues_max", 256)):
        (tmp_path / name).write_text(str(value))
    check = doctor.check_mq(str(tmp_path))
    assert check.verdict == "warn" and "msgsize_max=1024" in check.found and "sysctl" in check.fix


def _needs_unshare():
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to make mount/IPC namespaces")
    probe = subprocess.run(["unshare", "-m", "--ipc", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make namespaces here: {probe.stderr.decode().strip()}")


def test_a_1_mib_dev_shm_warns_for_named_objects_and_fails_without_anonymous_memory(monkeypatch):
    _needs_unshare()
    _, checks, _ = _doctor("unshare", "-m", shell_prefix="mount -t tmpfs -o size=1M tmpfs /dev/shm && ")
    # Unnamed objects use anonymous memory, which /dev/shm does not bound:
    # only named rings and large objects' slabs are held back.
    assert checks["shared memory"]["verdict"] == "warn"
    assert "anonymous memory" in checks["shared memory"]["found"]
    assert "--shm-size" in checks["shared memory"]["fix"]
    # Where memfd is refused every ring lives in /dev/shm: 1 MiB breaks normal use.
    tiny = _statvfs_of(1 << 20)
    monkeypatch.setattr(doctor.os, "statvfs", lambda path: tiny)
    monkeypatch.setattr(doctor, "_anonymous_memory", lambda: False)
    assert doctor.check_shm(os.path.dirname(os.path.abspath(__file__))).verdict == "fail"


def _statvfs_of(size):
    class Fake:
        f_frsize = 4096
        f_blocks = f_bavail = size // 4096
    return Fake()


def test_lowered_mq_limits_in_an_ipc_namespace_warn():
    _needs_unshare()
    status, checks, _ = _doctor("unshare", "--ipc",
                                shell_prefix="echo 1024 > /proc/sys/fs/mqueue/msgsize_max && ")
    assert checks["POSIX message queues"]["verdict"] == "warn"
    assert "msgsize_max=1024" in checks["POSIX message queues"]["found"]
