"""Transports behind the one Channel API; each module registers its address scheme
with :mod:`ringipc.channels.address` and knows nothing about the others."""
