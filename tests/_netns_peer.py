"""Both ends of the cross-namespace TCP test, run as ``python _netns_peer.py ROLE ...``
inside a network namespace the test created."""
import hashlib
import json
import pickle
import socket
import sys

from ringipc.channels.address import connect, listen
from ringipc.errors import AddressError, AuthenticationError
from ringipc.channels.framing import HEADER

KEY = b"netns-test-key"
SIZES = [0, 1, 8, 4096, 65537, 1 << 20, 3 << 20]


class Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def server(host: str) -> None:
    results = {}
    try:
        listen(f"tcp://{host}:0")
        results["open_bind"] = "allowed"
    except AddressError:
        results["open_bind"] = "refused"
    with listen(f"tcp://{host}:0", authkey=KEY) as lst:
        print(lst.address, flush=True)
        with lst.accept(timeout=60) as ch:  # 1: the right key, an echo of digests
            while True:
                data = ch.recv_bytes(timeout=60)
                if data == b"done":
                    break
                ch.send((len(data), hashlib.sha256(data).hexdigest()))
        for attempt in ("wrong_key", "raw_garbage"):  # 2 and 3 must fail before any unpickling
            try:
                lst.accept(timeout=60).close()
                results[attempt] = "accepted"
            except AuthenticationError:
                results[attempt] = "rejected"
    print(json.dumps(results), flush=True)


def client(address: str, marker: str) -> None:
    results = {}
    with connect(address, authkey=KEY, timeout=60) as ch:
        ok = True
        for i, size in enumerate(SIZES):
            data = hashlib.shake_256(bytes([i])).digest(size) if size else b""
            ch.send_bytes(data)
            ok &= ch.recv(timeout=60) == (size, hashlib.sha256(data).hexdigest())
        ch.send_bytes(b"done")
        results["echo"] = ok
    try:
        with connect(address, authkey=b"not-the-key", timeout=60) as ch:
            ch.send(Marker(marker))
        results["wrong_key"] = "connected"
    except AuthenticationError:
        results["wrong_key"] = "refused"
    host, port = address[len("tcp://"):].rsplit(":", 1)
    evil = pickle.dumps(Marker(marker))
    with socket.create_connection((host, int(port)), timeout=60) as raw:
        raw.sendall(bytes(64) + HEADER.pack(len(evil)) + evil)
        try:
            while raw.recv(4096):
                pass
        except ConnectionResetError:
            pass
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2])
    else:
        client(sys.argv[2], sys.argv[3])
