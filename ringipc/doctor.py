"""``python -m ringipc doctor``: what on this machine stands in the way of
ringipc, and how to fix it.

Each check gives a verdict - ok, info, warn (works, but slower or smaller than
it could), fail (normal use breaks) - with what was found and the fix.  The
exit status is 1 when any check fails, else 0; ``--json`` prints the checks
for scripts.  The most common reports against shared-memory IPC libraries
are a small /dev/shm in a container and segments left by a crash, so those
come first.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence

SHM_DIR = "/dev/shm"
MQ_PROC = "/proc/sys/fs/mqueue"
# A default Queue is a 1 MiB ring plus its bookkeeping; below this, programs
# that make a few of them fail at creation.
SHM_COMFORTABLE = 256 << 20
SHM_MINIMUM = 8 << 20
MQ_MESSAGE_COMFORTABLE = 8192  # mq:// channels' default largest message
NOFILE_COMFORTABLE = 1024


@dataclass
class Check:
    name: str
    verdict: str          # "ok", "info", "warn" or "fail"
    found: str
    fix: str = ""


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _in_container() -> Optional[str]:
    if os.path.exists("/.dockerenv"):
        return "Docker"
    try:
        with open("/proc/1/cgroup") as f:
            text = f.read()
    except OSError:
        return None
    for marker, name in (("docker", "Docker"), ("kubepods", "Kubernetes"), ("containerd", "containerd"),
                         ("libpod", "Podman"), ("lxc", "LXC")):
        if marker in text:
            return name
    return None


def largest_ring_capacity(free: int) -> int:
    """The largest power-of-two ring capacity whose segment fits in `free` bytes (0 if none)."""
    from .core._ring import segment_size

    capacity = 1 << 40
    while capacity >= 4096 and segment_size(capacity) > free:
        capacity >>= 1
    return capacity if capacity >= 4096 else 0


def check_shm(shm_dir: str = SHM_DIR) -> Check:
    if not os.path.isdir(shm_dir):
        return Check("shared memory", "fail", f"{shm_dir} does not exist",
                     f"mount a tmpfs there (mount -t tmpfs -o mode=1777 tmpfs {shm_dir}); "
                     "ringipc.connect('auto://...') falls back to sockets meanwhile")
    if not os.access(shm_dir, os.W_OK | os.X_OK):
        return Check("shared memory", "fail", f"{shm_dir} is not writable by this user",
                     f"make it world-writable with the sticky bit (chmod 1777 {shm_dir})")
    st = os.statvfs(shm_dir)
    total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    found = (f"{shm_dir}: {_mib(total)}, {_mib(free)} free: the largest ring that fits now holds "
             f"{_mib(largest_ring_capacity(free))}")
    container = _in_container()
    fix = (f"enlarge it (Docker: --shm-size=1g; Kubernetes: an emptyDir with medium: Memory at {shm_dir}; "
           f"otherwise mount -o remount,size=1G {shm_dir})") + (f" - this looks like {container}" if container else "")
    if not _anonymous_memory():
        # Every segment is named: /dev/shm holds all of them.
        if free < SHM_MINIMUM:
            return Check("shared memory", "fail", found + " (no anonymous memory here: every ring lives in it)", fix)
        if free < SHM_COMFORTABLE:
            return Check("shared memory", "warn", found + " (small: each Queue's ring takes 1 MiB, large objects more)",
                         fix)
        return Check("shared memory", "ok", found)
    # Objects made without a name use anonymous memory (memfd), which /dev/shm
    # does not bound; named objects and large objects' slabs still live here.
    if free < SHM_COMFORTABLE:
        return Check("shared memory", "warn", found + " (small for named rings and for objects larger than a "
                     "ring, whose slabs live here; unnamed rings, queues and pipes use anonymous memory)", fix)
    return Check("shared memory", "ok", found)


def _anonymous_memory() -> bool:
    """Whether memfd_create works here (seccomp or an old kernel may refuse it)."""
    if not hasattr(os, "memfd_create"):
        return False
    try:
        os.close(os.memfd_create("ringipc-doctor-probe", os.MFD_CLOEXEC))
    except OSError:
        return False
    return True


def check_orphans() -> Check:
    from .cleanup import list_segments

    segments = list_segments()
    orphans = [s for s in segments if s["orphaned"]]
    if not orphans:
        return Check("leftover segments", "ok", f"{len(segments)} ringipc segment(s), none orphaned")
    size = sum(s["size"] for s in orphans)
    names = ", ".join(s["name"] for s in orphans[:5]) + (" ..." if len(orphans) > 5 else "")
    return Check("leftover segments", "warn",
                 f"{len(orphans)} segment(s) whose creator died ({_mib(size)}): {names}",
                 "python -m ringipc cleanup (--dry-run to list only)")


def _read_int(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def check_mq(mq_proc: str = MQ_PROC) -> Check:
    limits = {name: _read_int(f"{mq_proc}/{name}") for name in ("msg_max", "msgsize_max", "queues_max")}
    soft, _ = resource.getrlimit(resource.RLIMIT_MSGQUEUE)
    if any(v is None for v in limits.values()):
        return Check("POSIX message queues", "info", f"{mq_proc} is unreadable: mq:// channels may be unavailable",
                     "mount the mqueue filesystem / use a kernel with CONFIG_POSIX_MQUEUE")
    found = (f"msg_max={limits['msg_max']}, msgsize_max={limits['msgsize_max']}, queues_max={limits['queues_max']}, "
             f"RLIMIT_MSGQUEUE={'unlimited' if soft == resource.RLIM_INFINITY else soft}")
    if limits["msgsize_max"] < MQ_MESSAGE_COMFORTABLE or limits["msg_max"] < 10:  # type: ignore[operator]  # none is None here
        return Check("POSIX message queues", "warn", found + f": below mq://'s defaults (10 x {MQ_MESSAGE_COMFORTABLE} B)",
                     "sysctl -w fs.mqueue.msgsize_max=65536 fs.mqueue.msg_max=64 (only mq:// needs them)")
    return Check("POSIX message queues", "ok", found)


def check_nofile() -> Check:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    found = f"RLIMIT_NOFILE soft {soft}, hard {hard} (each socket/pipe channel holds 1-2 descriptors)"
    if soft != resource.RLIM_INFINITY and soft < NOFILE_COMFORTABLE:
        return Check("open files", "warn", found, "ulimit -n 4096, or resource.setrlimit(RLIMIT_NOFILE) up to the hard limit")
    return Check("open files", "ok", found)


def check_wait_backend() -> Check:
    from .core._ring import WAIT_BACKEND

    if WAIT_BACKEND == "futex":
        return Check("wait backend", "ok", "futex: a blocked reader or writer sleeps on a shared futex word")
    return Check("wait backend", "info",
                 f"{WAIT_BACKEND}: process-shared POSIX semaphores (built with RINGIPC_WAIT=sem, or no futexes here)",
                 "on Linux, rebuild without RINGIPC_WAIT=sem for futex waits")


def check_cpus() -> Check:
    total = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = total
    found = f"{usable} of {total} CPUs usable by this process"
    if usable < 2:
        return Check("CPUs", "warn", found + ": producer and consumer take turns (rings do not spin here)",
                     "give the processes two or more CPUs (taskset, --cpus, cpuset) for full speed")
    if usable < total:
        return Check("CPUs", "info", found + " (an affinity mask or cpuset limits it)")
    return Check("CPUs", "ok", found)


def check_namespaces() -> Check:
    """Peers must share a pid (and time) namespace: liveness asks the kernel by pid."""
    notes = []
    for kind in ("pid", "time"):
        try:
            mine, init = os.readlink(f"/proc/self/ns/{kind}"), os.readlink(f"/proc/1/ns/{kind}")
        except OSError:
            continue
        if mine != init:
            notes.append(kind)
    if not os.path.isdir("/proc/self"):
        return Check("process namespaces", "warn", "/proc is not mounted: a dead peer's recycled pid looks alive",
                     "mount /proc so that crash recovery can tell a dead peer from a live one")
    if notes:
        return Check("process namespaces", "info",
                     f"this process is in its own {' and '.join(notes)} namespace: every process sharing a "
                     "ring must be in the same ones (crash recovery asks the kernel about peers by pid)")
    return Check("process namespaces", "ok", "same pid and time namespaces as init")


CHECKS = [check_shm, check_orphans, check_mq, check_nofile, check_wait_backend, check_cpus, check_namespaces]


def run_checks() -> List[Check]:
    results = []
    for check in CHECKS:
        try:
            results.append(check())
        except Exception as exc:  # a broken check reports itself, it does not hide the others
            results.append(Check(check.__name__.replace("check_", ""), "warn", f"could not check: {exc!r}"))
    return results


_MARK = {"ok": "ok  ", "info": "info", "warn": "WARN", "fail": "FAIL"}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ringipc doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    args = parser.parse_args(argv)
    results = run_checks()
    failed = any(c.verdict == "fail" for c in results)
    if args.json:
        json.dump({"ok": not failed, "checks": [asdict(c) for c in results]}, sys.stdout, indent=2)
        print()
    else:
        for c in results:
            print(f"[{_MARK[c.verdict]}] {c.name}: {c.found}")
            if c.fix and c.verdict != "ok":
                print(f"       fix: {c.fix}")
        print("something blocks normal use: see FAIL above" if failed else "nothing blocks normal use")
    return 1 if failed else 0
