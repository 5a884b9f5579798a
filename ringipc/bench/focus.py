"""The default ``python -m ringipc bench``: the rows that answer "is ringipc
faster than what I use now?", in well under a minute.

Each ringipc facility meets the peer a user would otherwise pick for the same
job (the first of its list that can run here) and ``mp.Queue`` (the baseline
every ratio is taken against), per scenario.  ``--all`` runs every facility in
every scenario instead.
"""

from typing import Any, Dict, List, Sequence, Tuple

from ringipc.bench.adapters import BASELINE
from ringipc.bench.runner import LATENCY, MPMC, THROUGHPUT

#: message sizes of the focused throughput scenario: one small, one large
SIZES = [64, 64 << 10]

# (ringipc facility, its peers by preference): the queue drop-in against the
# third-party queue it replaces, the raw ring against a zero-copy shared-memory
# library, the MPMC ring against a shared-memory or socket many-to-many byte queue.  Plain OS
# facilities close each list so the row is there on a machine without extras.
PAIRS: Dict[str, List[Tuple[str, Sequence[str]]]] = {
    THROUGHPUT: [("ringipc.Queue", ("faster-fifo", "mp.SimpleQueue")),
                 ("ringipc.Ring-spsc", ("iceoryx2", "os.pipe"))],
    LATENCY: [("ringipc.Queue", ("faster-fifo", "mp.SimpleQueue")),
              ("ringipc.Ring-spsc", ("iceoryx2", "os.pipe"))],
    MPMC: [("ringipc.Queue", ("faster-fifo", "posix-mq")),
           ("ringipc.Ring-mpmc", ("cloudtoid-interprocess", "zmq-push-pull", "posix-mq"))],
}


def _runs_here(facility: Any) -> bool:
    try:
        return bool(facility.available()[0])
    except Exception:  # a broken optional package is a peer that cannot run, not a crash
        return False


def select(facilities: Any) -> Tuple[List[Any], Dict[str, List[str]]]:
    """(the facilities to run, {scenario: names to run in it}) from ``facilities``."""
    by_name = {f.name: f for f in facilities}
    here: Dict[str, bool] = {}

    def available(name: str) -> bool:
        if name not in here:
            here[name] = name in by_name and _runs_here(by_name[name])
        return here[name]

    plan: Dict[str, List[str]] = {}
    for scenario, pairs in PAIRS.items():
        names = plan.setdefault(scenario, [])
        for ours, peers in pairs:
            peer = next((p for p in peers if available(p)), None)
            for name in (ours, peer):
                if name is not None and name in by_name and name not in names:
                    names.append(name)
        if BASELINE in by_name:
            names.append(BASELINE)
    wanted = {name for names in plan.values() for name in names}
    return [f for f in facilities if f.name in wanted], plan
