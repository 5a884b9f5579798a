"""The asyncio peers live in the package, where ``python -m ringipc bench
--scenarios asyncio`` uses them too (ringipc/bench/async_peers.py)."""
from ringipc.bench.async_peers import RTT_PEERS, THROUGHPUT_PEERS  # noqa: F401
