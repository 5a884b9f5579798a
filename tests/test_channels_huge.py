"""Messages over 2 GiB: lengths are 64-bit end to end.

Past 2 GiB a single write() or read() is capped by the kernel (0x7ffff000
bytes), and a 32-bit length would wrap: both must be handled, not hit."""
import os
import shutil
import threading

import pytest

from _channel_support import channel_pair
from _channel_support import no_leftovers  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("no_leftovers")

HUGE = (2 << 30) + (1 << 20) + 7  # just past 2 GiB, and not a multiple of any buffer size
UNIT = 1 << 20


def huge_payload():
    # A random 1 MiB unit repeated: cheap to build, and a shifted or dropped
    # range cannot compare equal (the unit has no period of its own).
    unit = os.urandom(UNIT)
    payload = bytearray(unit) * (HUGE // UNIT)
    payload += unit[: HUGE - len(payload)]
    return payload


def _dev_shm_room():
    try:
        return shutil.disk_usage("/dev/shm").free
    except OSError:
        return 0


# unix:// stands for every framed stream (they share framing and reader);
# shm:// for the rings, where a message this size takes a side segment.
@pytest.mark.parametrize("transport", ["unix", "shm"])
def test_message_over_2_gib(transport, tmp_path):
    if transport == "shm" and _dev_shm_room() < 2 * HUGE:
        pytest.skip(f"/dev/shm has {_dev_shm_room()} bytes free; a {HUGE}-byte message needs a side segment that size")
    payload = huge_payload()
    with channel_pair(transport, tmp_path, max_message_size=None) as (a, b):
        errors = []

        def send():
            try:
                b.send_bytes(payload)
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        try:
            received = bytearray(HUGE + 100)
            assert a.recv_bytes_into(received, timeout=300) == HUGE
        finally:
            sender.join(300)
        assert not errors
        assert memoryview(received)[:HUGE] == payload
