"""Nothing left behind by channels, however their creator ends.

For every transport whose listener puts a name in the system (socket file,
FIFO, POSIX or System V message queue), a creator in another process is
ended by SIGKILL, by SIGTERM without a handler (the same: no exit code
runs), by SIGTERM with a handler that exits, and by a normal exit.  The
last two leave nothing; the first two leave the name, which the next
listener on the same address reaps (its owner is provably gone) and
``python -m ringipc cleanup`` removes (message queues).  A live creator's
name is never taken.  Abstract UNIX sockets leave nothing at all."""
import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest

from _channel_support import address_for, mq_exists, sysv_exists
from _channel_support import no_leftovers  # noqa: F401  (fixture)
from ringipc.channels.address import connect, fallback_address, listen

pytestmark = pytest.mark.usefixtures("no_leftovers")

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMED = ["unix", "unixpacket", "unixgram", "fifo", "mq", "sysvmq"]
ABSTRACT = ["unix-abstract", "unixgram-abstract"]

# The creator: listens on argv[1], says so, then waits to be ended (or ends itself).
CREATOR = r"""
import signal, sys
from ringipc.channels.address import listen
how = sys.argv[2]
if how == "term-handler":
    # SIGTERM turned into a normal exit.  Taken with sigwait, not a handler
    # and pause(): a signal landing just before pause() would be missed.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
lst = listen(sys.argv[1])
print("ready", flush=True)
if how == "term-handler":
    signal.sigwait({signal.SIGTERM})
    sys.exit(143)
if how == "wait":
    signal.pause()  # until SIGKILL, or SIGTERM's default action
"""


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [TOP, os.environ.get("PYTHONPATH")])))


def _creator(address, how="wait"):
    proc = subprocess.Popen([sys.executable, "-c", CREATOR, address, how], stdout=subprocess.PIPE,
                            env=_env(), text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _end(proc, signum):
    if signum is not None:
        proc.send_signal(signum)
    proc.wait(60)
    proc.stdout.close()


def _left(address) -> bool:
    """Whether the name ``address`` gives the system is still there."""
    scheme, target = address.split("://", 1)
    if scheme == "mq":
        return mq_exists(target + ".up") or mq_exists(target + ".down")
    if scheme == "sysvmq":
        return sysv_exists(int(target))
    if target.startswith("@"):
        return False  # abstract: nothing outside the socket to leave
    return os.path.lexists(target)


def _works(lst):
    """One message each way between a new connector and ``lst``."""
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("server", lst.accept(timeout=30)))
    t.start()
    try:
        with connect(lst.address, timeout=30) as client:
            t.join(60)
            with out["server"] as server:
                client.send_bytes(b"ping")
                assert server.recv_bytes(timeout=30) == b"ping"
                server.send_bytes(b"pong")
                assert client.recv_bytes(timeout=30) == b"pong"
    finally:
        t.join(60)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("kind", NAMED + ABSTRACT)
def test_a_killed_creators_name_is_reaped_by_the_next_listener(kind, signum, tmp_path):
    address = address_for(kind, tmp_path)
    _end(_creator(address), signum)
    assert _left(address) == (kind in NAMED), "no exit code runs: only what needs no name is gone"
    with listen(address) as lst:
        _works(lst)
    assert not _left(address)


@pytest.mark.parametrize("kind", NAMED)
def test_a_live_creators_name_is_not_taken(kind, tmp_path):
    address = address_for(kind, tmp_path)
    proc = _creator(address)
    try:
        with pytest.raises(FileExistsError):
            listen(address)
        assert _left(address)
    finally:
        _end(proc, signal.SIGKILL)
    with listen(address):  # now it is a leftover: reaped
        pass
    assert not _left(address)


@pytest.mark.parametrize("how", ["exit", "term-handler"])
@pytest.mark.parametrize("kind", NAMED + ABSTRACT)
def test_normal_exit_and_handled_sigterm_leave_nothing(kind, how, tmp_path):
    address = address_for(kind, tmp_path)
    _end(_creator(address, how), signal.SIGTERM if how == "term-handler" else None)
    assert not _left(address)


def test_channels_without_a_path_are_abstract(tmp_path):
    # auto:// without shared memory, and both ends of every unixgram channel.
    assert fallback_address("x").target.startswith("@")
    with listen(address_for("unixgram", tmp_path)) as lst:
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("server", lst.accept(timeout=30)))
        t.start()
        with connect(lst.address, timeout=30) as client:
            t.join(60)
            with out["server"] as server:
                for ch in (client, server):
                    assert ch._sock.getsockname()[:1] == b"\0"
                    assert ch._sock.getpeername()[:1] == b"\0"
    assert sorted(os.listdir(tmp_path)) == []


CONNECTOR = r"""
import sys
from ringipc.channels.address import connect
connect(sys.argv[1])  # waits for ever: nobody answers
"""


def test_a_fifo_connector_killed_in_its_handshake_leaves_a_pair_the_next_listener_reaps(tmp_path):
    path = str(tmp_path / "f")
    os.mkfifo(path, 0o600)
    # A stand-in listener that reads the request and never answers.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    keep = os.open(path, os.O_WRONLY)  # so that the read below waits instead of seeing end-of-file
    proc = subprocess.Popen([sys.executable, "-c", CONNECTOR, f"fifo://{path}"], env=_env())
    try:
        os.set_blocking(fd, True)
        request = os.read(fd, 64)  # the connector's pair exists from before this is written
        assert request.startswith(b"RINGIPC-FIFO1 ")
    finally:
        proc.kill()
        proc.wait(60)
        os.close(fd)
        os.close(keep)
        os.unlink(path)
    token = request.split()[1].decode()
    assert sorted(os.listdir(tmp_path)) == [f"f.{token}.down", f"f.{token}.up"]
    os.mkfifo(str(tmp_path / f"f.{'0' * 32}.down"))  # read by nobody, but no .up: also reaped
    with listen(f"fifo://{path}") as lst:
        assert sorted(os.listdir(tmp_path)) == ["f"]
        _works(lst)
    assert os.listdir(tmp_path) == []


# Runs in a new IPC and mount namespace: the queues it makes and the
# cleanup it runs cannot touch anybody else's.
IN_NAMESPACE = r"""
import os, random, signal, subprocess, sys
mqdir, creator = sys.argv[1], sys.argv[2]
def start(address):
    p = subprocess.Popen([sys.executable, "-c", creator, address, "wait"], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p
key = random.randrange(1 << 24, 1 << 30)
dead = [start("mq:///left"), start(f"sysvmq://{key}")]
live = start("mq:///alive")
for p in dead:
    p.kill(); p.wait()
def cleanup(*extra):
    return subprocess.run([sys.executable, "-m", "ringipc", "cleanup", "--mqueue-dir", mqdir, *extra],
                          capture_output=True, text=True, check=True).stdout
print(cleanup("--dry-run"))
print("AFTER DRY RUN", sorted(os.listdir(mqdir)))
print(cleanup())
print("AFTER", sorted(os.listdir(mqdir)))
import sysv_ipc
try:
    sysv_ipc.MessageQueue(key)
    print("SYSV LEFT")
except sysv_ipc.ExistentialError:
    print("SYSV GONE")
live.kill(); live.wait()
"""


def test_cleanup_removes_the_queues_of_killed_creators_and_keeps_live_ones(tmp_path):
    pytest.importorskip("sysv_ipc")
    pytest.importorskip("posix_ipc")
    mqdir = tmp_path / "mq"
    mqdir.mkdir()
    probe = subprocess.run(["unshare", "-m", "-i", "true"], capture_output=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode:
        pytest.skip("needs unshare -m -i (root) to list message queues of a private namespace")
    script = f'mount -t mqueue none "$1" && exec "{sys.executable}" -c "$2" "$1" "$3"'
    out = subprocess.run(["unshare", "-m", "-i", "sh", "-c", script, "sh", str(mqdir), IN_NAMESPACE, CREATOR],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "mq:///left  (/left.up + /left.down)  orphaned" in text
    assert "mq:///alive  (/alive.up + /alive.down)  in use" in text
    assert "AFTER DRY RUN ['alive.down', 'alive.up', 'left.down', 'left.up']" in text
    assert "AFTER ['alive.down', 'alive.up']" in text
    assert "removed 1 orphaned POSIX message queue pair(s) of 2" in text
    assert "removed 1 orphaned System V message queue(s) of 1" in text
    assert "SYSV GONE" in text
    os.rmdir(mqdir)
