"""install()/uninstall(): make multiprocessing itself hand out ringipc's queues and pipes.

For programs and libraries that build their queues internally and take no
context argument.  While installed:

* ``multiprocessing.Queue``/``SimpleQueue``/``JoinableQueue``/``Pipe`` (the
  module-level functions) and the same methods of *every* multiprocessing
  context -- the default one and those from ``multiprocessing.get_context(m)``
  -- return ringipc's objects.  ``Pool`` and ``ProcessPoolExecutor`` build
  their queues from a context, so they run on ringipc's too.
* ``multiprocessing.connection.wait`` (and the name ``multiprocessing.pool``
  imported) is ringipc's ``wait``, which also understands ringipc's
  Connections, whose descriptors carry no data (docs/dropins.md).
* ``concurrent.futures.process._SafeQueue`` is ringipc's ``CallQueue``, so a
  ``ProcessPoolExecutor``'s call queue is a ring too (mp/executor.py).
* Children follow: a spawned child's command line installs before it
  unpickles anything, and the forkserver preloads ``ringipc.mp._autoinstall``
  (a forkserver already running when install() is called keeps what it had).
  Forked children inherit the patched modules.

``uninstall()`` puts every name back (objects already made stay what they
are).  Both are idempotent.  ``python -m ringipc run script.py [args]`` runs a
script with ringipc installed.
"""
from __future__ import annotations

import multiprocessing
import threading
from typing import Any, List, Optional, Tuple
from multiprocessing import connection as _mp_connection
from multiprocessing import context as _mp_context
from multiprocessing import forkserver as _mp_forkserver
from multiprocessing import pool as _mp_pool
from multiprocessing import spawn as _mp_spawn
import concurrent.futures.process as _cf_process

from . import connection, executor, queues, waiting

AUTOINSTALL = "ringipc.mp._autoinstall"
_lock = threading.Lock()
_saved: Optional[List[Tuple[Any, str, Any]]] = None  # [(target, name, original)] while installed


def _queue(self: _mp_context.BaseContext, maxsize: int = 0) -> queues.Queue[Any]:
    return queues.Queue(maxsize, ctx=self)


def _joinable_queue(self: _mp_context.BaseContext, maxsize: int = 0) -> queues.JoinableQueue[Any]:
    return queues.JoinableQueue(maxsize, ctx=self)


def _simple_queue(self: _mp_context.BaseContext) -> queues.SimpleQueue[Any]:
    return queues.SimpleQueue(ctx=self)


def _pipe(self: _mp_context.BaseContext, duplex: bool = True) -> Tuple[connection.Connection, connection.Connection]:
    return connection.Pipe(duplex)


def _get_command_line(**kwds: Any) -> List[str]:
    # A spawned child runs `python -c "<program>"`: install first -- if the
    # child can import ringipc before it has the parent's sys.path (a parent
    # that put ringipc on sys.path by hand would otherwise kill its children).
    line = _spawn_command_line(**kwds)
    if "-c" in line:
        i = line.index("-c") + 1
        line[i] = (f"import importlib.util; importlib.util.find_spec('ringipc') and "
                   f"__import__('{AUTOINSTALL}'); {line[i]}")
    return line


_spawn_command_line = _mp_spawn.get_command_line


def _patches() -> List[Tuple[Any, str, Any]]:
    return [
        (multiprocessing, "Queue", queues.Queue),
        (multiprocessing, "JoinableQueue", queues.JoinableQueue),
        (multiprocessing, "SimpleQueue", queues.SimpleQueue),
        (multiprocessing, "Pipe", connection.Pipe),
        (_mp_context.BaseContext, "Queue", _queue),
        (_mp_context.BaseContext, "JoinableQueue", _joinable_queue),
        (_mp_context.BaseContext, "SimpleQueue", _simple_queue),
        (_mp_context.BaseContext, "Pipe", _pipe),
        (_mp_connection, "wait", waiting.wait),
        (_mp_pool, "wait", waiting.wait),
        (_mp_spawn, "get_command_line", _get_command_line),
        # The executor builds its call queue from this class, not from a
        # context: the one queue a context cannot reach (mp/executor.py).
        (_cf_process, "_SafeQueue", executor.CallQueue),
    ]


def install() -> None:
    """Make multiprocessing hand out ringipc's queues and pipes (idempotent)."""
    global _saved
    with _lock:
        if _saved is not None:
            return
        saved = []
        for target, name, replacement in _patches():
            saved.append((target, name, target.__dict__[name]))
            setattr(target, name, replacement)
        _saved = saved
        server: Any = _mp_forkserver._forkserver  # _preload_modules is private, not in the stubs
        if AUTOINSTALL not in server._preload_modules:
            server._preload_modules = list(server._preload_modules) + [AUTOINSTALL]


def uninstall() -> None:
    """Undo install() (idempotent); objects already made stay ringipc's."""
    global _saved
    with _lock:
        if _saved is None:
            return
        for target, name, original in _saved:
            setattr(target, name, original)
        _saved = None
        server: Any = _mp_forkserver._forkserver  # _preload_modules is private, not in the stubs
        if AUTOINSTALL in server._preload_modules:
            server._preload_modules = [m for m in server._preload_modules if m != AUTOINSTALL]


def installed() -> bool:
    """Whether install() is in effect in this process."""
    return _saved is not None
