"""The shared-memory ring: the Ring type (C in ``csrc/``, wrapped in Cython),
views, segments and their names, side segments for large messages, lifetimes
across spawn, byte-stream mode, read-only snapshots of segments.

Imports only :mod:`ringipc.errors`; everything above builds on it.
"""
