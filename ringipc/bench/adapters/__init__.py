"""The registry of facilities.

Each module listed in ``MODULES`` exports ``FACILITIES``, a list of
:class:`~ringipc.bench.adapters.base.Facility` instances; adding a transport is
one small module and one line here.  ``register`` adds one at run time (tests,
users' own transports).
"""
import fnmatch
import importlib
from typing import Any, List, Optional, Sequence

MODULES = [
    "ringipc.bench.adapters.ringipc_core",
    "ringipc.bench.adapters.ringipc_transports",
    "ringipc.bench.adapters.ringipc_stream",
    "ringipc.bench.adapters.mp",
    "ringipc.bench.adapters.streams",
    "ringipc.bench.adapters.peers",
    "ringipc.bench.adapters.datagrams",
    "ringipc.bench.adapters.iceoryx",
    "ringipc.bench.adapters.shm_peers",
    "ringipc.bench.adapters.fanout",
    "ringipc.bench.adapters.fanout_peers",
]

#: what every ratio is taken against (fan-out scenarios: FANOUT_BASELINE)
BASELINE = "mp.Queue"
from ringipc.bench.fanout import FANOUT_BASELINE  # noqa: E402

_extra: List[Any] = []


def register(facility: Any) -> None:
    """Add a facility to every later ``all_facilities()`` in this process."""
    _extra.append(facility)


def unregister(facility: Any) -> None:
    _extra.remove(facility)


def all_facilities() -> List[Any]:
    out = []
    for name in MODULES:
        out.extend(importlib.import_module(name).FACILITIES)
    out.extend(_extra)
    seen = set()
    for f in out:
        if f.name in seen:
            raise ValueError(f"two facilities are named {f.name!r}")
        seen.add(f.name)
    return out


def _patterns(text: Optional[str]) -> List[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def select(only: Optional[str] = None, skip: Optional[str] = None) -> List[Any]:
    """Facilities matching ``only`` (comma-separated globs; all when empty) and not ``skip``.

    The baseline is kept whenever ``only`` is given and ``skip`` does not name it,
    so the ratios still have something to refer to.
    """
    only_p, skip_p = _patterns(only), _patterns(skip)
    facilities = all_facilities()
    names = [f.name for f in facilities]
    for pattern in only_p + skip_p:
        if not fnmatch.filter(names, pattern):
            raise ValueError(f"no facility matches {pattern!r}; known: {', '.join(names)}")

    def named(f: Any) -> bool:
        return any(fnmatch.fnmatchcase(f.name, p) for p in only_p)

    # The fan-out baseline is kept when a fan-out facility is asked for.
    fanout_asked = any(getattr(f, "fanout", False) and named(f) for f in facilities)

    def wanted(f: Any) -> bool:
        if any(fnmatch.fnmatchcase(f.name, p) for p in skip_p):
            return False
        if not only_p or f.name == BASELINE or (fanout_asked and f.name == FANOUT_BASELINE):
            return True
        return any(fnmatch.fnmatchcase(f.name, p) for p in only_p)

    return [f for f in facilities if wanted(f)]
