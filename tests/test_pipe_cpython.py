"""CPython 3.11's connection tests (Connection and poll), run on ringipc's Pipe.

Exclusions (also in docs/dropins.md) are deliberate differences, not failures.
"""
from _cpython_mp import START_METHODS, bind, cpython

for _method in START_METHODS:
    bind(cpython._TestConnection, _method, {}, globals())
    bind(cpython._TestPoll, _method, {}, globals())
del _method
