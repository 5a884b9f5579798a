"""Spinning before parking (ringipc/asyncio/_spin.py): bounded, GIL
released, never while the loop has other work, adaptive, configurable."""
import asyncio
import threading

import pytest

from ringipc import asyncio as ra
from ringipc.asyncio import _spin
from ringipc.core._ring import Ring
from ringipc.core.doorbell import Doorbell

from _async_support import run, uvloop  # noqa: F401  (fixture)

TIMEOUT = 30


def test_spin_us_is_checked():
    for bad in (-1, _spin.MAX_SPIN_US + 1, float("nan")):
        with pytest.raises(ValueError):
            ra.AsyncRing(1 << 12, spin_us=bad)
    for bad in ("10", True, None.__class__):
        with pytest.raises(TypeError):
            ra.SimpleQueue(spin_us=bad)
    ra.AsyncRing(1 << 12, spin_us=0).close()


def test_a_spin_returns_when_another_thread_commits_with_the_gil_released():
    ring = Ring(1 << 12, "spsc")
    bell = Doorbell(ring)
    try:
        assert not bell.spin(0, 0.001)  # empty: gives up after its time
        started = threading.Event()

        def send():
            started.wait(TIMEOUT)
            ring.send_bytes(b"x")  # Python code: runs only if the spinner let the GIL go

        t = threading.Thread(target=send)
        t.start()
        started.set()
        assert bell.spin(0, TIMEOUT)  # up to 30 s: returns at the commit
        t.join(TIMEOUT)
        assert ring.recv_bytes(False) == b"x"
        assert bell.drain() == 0  # nothing was armed, so nothing rang
    finally:
        bell.close()
        ring.close()


def test_policy_spins_only_on_an_idle_loop_and_gives_up_after_fruitless_spins():
    spin = _spin.Spin(40)
    loop = asyncio.new_event_loop()
    try:
        assert spin.seconds(loop) == pytest.approx(40e-6)
        loop.call_soon(lambda: None)  # something else to run: no spinning
        assert spin.seconds(loop) == 0
        loop.run_until_complete(asyncio.sleep(0))
        for _ in range(_spin.GIVE_UP):
            assert spin.seconds(loop) > 0
            spin.paid(False)
        got = [spin.seconds(loop) for _ in range(_spin.PROBE_EVERY)]
        assert got.count(0.0) == _spin.PROBE_EVERY - 1  # only the probe spins
        spin.paid(True)
        assert spin.seconds(loop) > 0
    finally:
        loop.close()
    assert _spin.Spin(0).seconds(asyncio.new_event_loop()) == 0


@pytest.mark.skipif(uvloop is None, reason="uvloop is not installed")
def test_a_loop_whose_run_queue_cannot_be_seen_spins_briefly():
    loop = uvloop.new_event_loop()
    try:
        assert _spin.Spin(1000).seconds(loop) == pytest.approx(_spin.OPAQUE_LOOP_SPIN_US * 1e-6)
    finally:
        loop.close()


def test_no_spin_while_other_tasks_are_ready(monkeypatch):
    # asyncio's own loop, whose run queue can be seen (uvloop's cannot: above).
    spins = []
    real = Doorbell.spin
    spinning = threading.Event()

    def spy(self, length, seconds):
        loop = asyncio.get_running_loop()
        spins.append(len(getattr(loop, "_ready", ())))
        spinning.set()
        return real(self, length, seconds)

    monkeypatch.setattr(Doorbell, "spin", spy)

    async def main():
        async with ra.AsyncRing(1 << 12, spin_us=1000) as ring:
            async def busy():
                for _ in range(50):
                    await asyncio.sleep(0)
            waiter = asyncio.create_task(ring.recv_bytes())
            ticker = asyncio.create_task(busy())
            await ticker
            assert not spins  # the waiter parked at once: the ticker had work queued
            ring.send_bytes_nowait(b"x")
            assert await asyncio.wait_for(waiter, TIMEOUT) == b"x"
            # Now nothing else is ready: the wait spins (and the spin's
            # start is what makes the other thread send).
            t = threading.Thread(target=lambda: spinning.wait(TIMEOUT) and ring.ring.send_bytes(b"y"))
            t.start()
            assert await asyncio.wait_for(ring.recv_bytes(), TIMEOUT) == b"y"
            t.join(TIMEOUT)
    asyncio.run(main())
    assert spins and all(n == 0 for n in spins), spins


def test_spin_zero_never_spins(run, monkeypatch):  # noqa: F811
    monkeypatch.setattr(Doorbell, "spin", lambda *a: pytest.fail("spun with spin_us=0"))

    async def main():
        a, b = ra.Pipe(spin_us=0)
        async with a, b:
            got = asyncio.create_task(b.recv())
            await asyncio.sleep(0)
            await a.send(1)
            assert await asyncio.wait_for(got, TIMEOUT) == 1
    run(main())
