"""tcp:// between two network namespaces joined by a veth pair, both made
(and removed) by this test; the addresses exist only on that veth."""
import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "_netns_peer.py")


def run(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def two_namespaces():
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces (ip netns)")
    if shutil.which("ip") is None:
        pytest.skip("needs the 'ip' tool (iproute2) to create network namespaces")
    tag = os.getpid() % 10000
    subnet = f"10.200.{os.getpid() % 250 + 1}"
    ns = (f"ringipc-a-{tag}", f"ringipc-b-{tag}")
    veth = (f"rpa{tag}", f"rpb{tag}")
    made = []
    try:
        for name in ns:
            run("netns", "add", name)
            made.append(name)
    except (subprocess.CalledProcessError, OSError) as exc:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        pytest.skip(f"cannot create network namespaces here: {getattr(exc, 'stderr', exc)!r}")
    try:
        run("link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
        for name, dev, host in zip(ns, veth, ("1", "2")):
            run("link", "set", dev, "netns", name)
            run("-n", name, "addr", "add", f"{subnet}.{host}/24", "dev", dev)
            run("-n", name, "link", "set", dev, "up")
            run("-n", name, "link", "set", "lo", "up")
        yield ns, (f"{subnet}.1", f"{subnet}.2")
    finally:
        for name in ns:  # deleting a namespace deletes the veth end inside it
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def in_ns(name, *args, **kw):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        ["ip", "netns", "exec", name, sys.executable, PEER, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw,
    )


def test_tcp_across_namespaces_with_authkey(two_namespaces, tmp_path):
    (ns_a, ns_b), (ip_a, _) = two_namespaces
    marker = tmp_path / "unpickled-by-server"
    server = in_ns(ns_a, "server", ip_a)
    try:
        address = server.stdout.readline().strip()
        assert address.startswith(f"tcp://{ip_a}:"), server.stderr.read()
        client = in_ns(ns_b, "client", address, str(marker))
        out, err = client.communicate(timeout=120)
        assert client.returncode == 0, err
        server_out, server_err = server.communicate(timeout=120)
        assert server.returncode == 0, server_err
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert json.loads(out) == {"echo": True, "wrong_key": "refused"}
    assert json.loads(server_out) == {"open_bind": "refused", "wrong_key": "rejected", "raw_garbage": "rejected"}
    assert not marker.exists(), "a pickle from an unauthenticated peer was unpickled"


def test_namespaces_are_cleaned_up():
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout if shutil.which("ip") else ""
    assert f"ringipc-a-{os.getpid() % 10000}" not in listing
    assert f"ringipc-b-{os.getpid() % 10000}" not in listing
