"""Run under strace by tests/test_ring_bell.py: `count` 64 B messages through
a ring whose reader holds a doorbell, unarmed (mode "installed"), armed once
(mode "armed"), or none at all (mode "none").  Sends and receives in one
process, so that nothing ever sleeps: every system call strace sees is the
doorbell's (or Python's own start-up, which the caller subtracts)."""
import sys

from ringipc.core._ring import Ring
from ringipc.core.doorbell import Doorbell


def main(mode, count):
    ring = Ring(1 << 20)
    bell = Doorbell(ring) if mode != "none" else None
    if mode == "armed":
        assert not bell.arm()
    payload = b"x" * 64
    for _ in range(count):
        ring.send_bytes(payload)
        ring.recv_bytes()
    if bell is not None:
        bell.close()
    ring.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
