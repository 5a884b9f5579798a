"""Drop-ins for :mod:`multiprocessing`: Queue, SimpleQueue, JoinableQueue, Pipe
and Connection, wait() and get_context(), all carried on the shared-memory ring.

Imports :mod:`ringipc.core` and :mod:`ringipc.errors` only.
"""
