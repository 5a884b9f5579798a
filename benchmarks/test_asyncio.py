"""asyncio across two processes, each in its own event loop (issue 14):
64 B round trip against zmq.asyncio (PAIR) and asyncio streams over a UNIX
socket; 64 B throughput to one awaiting consumer against zmq.asyncio
PUSH/PULL.  Compare rows of one run only (``--benchmark-group-by=group``)."""
import asyncio

import pytest

pytest.importorskip("pytest_benchmark")

from _async_peers import RTT_PEERS, THROUGHPUT_PEERS  # noqa: E402

RTT_N = 2000
THROUGHPUT_N = 50_000


def _bench(benchmark, peer_type, mode, n):
    if peer_type.name.startswith("zmq"):
        pytest.importorskip("zmq", reason="pyzmq is not installed (it is in the 'bench' extra)")
    runner = asyncio.Runner()
    peer = peer_type(mode)
    try:
        coro = peer.rtt if mode == "rtt" else peer.drain
        runner.run(coro(n // 10))  # warm-up: both loops running, descriptors registered
        benchmark.group = f"asyncio {mode} 64 B: {n} messages"
        benchmark.pedantic(lambda: runner.run(coro(n)), rounds=5, iterations=1)
        benchmark.extra_info.update(peer=peer_type.name, messages=n)
    finally:
        peer.stop()
        runner.close()


@pytest.mark.parametrize("peer_type", RTT_PEERS, ids=lambda p: p.name)
def test_async_round_trip(benchmark, peer_type):
    _bench(benchmark, peer_type, "rtt", RTT_N)


@pytest.mark.parametrize("peer_type", THROUGHPUT_PEERS, ids=lambda p: p.name)
def test_async_throughput(benchmark, peer_type):
    _bench(benchmark, peer_type, "throughput", THROUGHPUT_N)
