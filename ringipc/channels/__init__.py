"""One Channel API over every transport: addresses (``connect``/``listen``),
framing, authentication, byte streams, and the transports in
:mod:`ringipc.channels.transports` (each with its C fast path beside it).

Imports :mod:`ringipc.core`, :mod:`ringipc.mp` (the ``shm://`` transport carries
its messages on a ring Connection) and :mod:`ringipc.errors`.
"""
