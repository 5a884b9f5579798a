"""Fan-out scenarios: one producer, N subscribers each receiving every message.

``--scenarios fanout`` runs one scenario per subscriber count
(``fanout-1``, ``fanout-4``) at each of ``FANOUT_SIZES``.  Only facilities
with ``fanout = True`` (ringipc/bench/adapters/fanout.py) take part, and
ratios are taken against ``FANOUT_BASELINE``: multiprocessing with one Queue
per subscriber.  The rate is deliveries per second: messages x subscribers.
"""
from typing import Any, Optional

FANOUT = "fanout"
FANOUT_SIZES = [64, 1 << 20]
FANOUT_SUBSCRIBERS = [1, 4]
FANOUT_BASELINE = "mp.Queue-per-sub"


def scenario_name(subscribers: int) -> str:
    return f"{FANOUT}-{subscribers}"


def is_fanout(scenario: str) -> bool:
    return scenario.startswith(FANOUT + "-")


def subscribers_of(scenario: str) -> int:
    return int(scenario[len(FANOUT) + 1:])


def title(scenario: str) -> str:
    n = subscribers_of(scenario)
    return f"Fan-out, 1 publisher -> {n} subscriber{'s' if n > 1 else ''} (deliveries/s)"


def check_round(digests: Any, want: Any) -> Optional[str]:
    """Every subscriber must have received the whole stream: returns how many
    subscribers fell short, with the first difference, or None."""
    for i, got in enumerate(digests):
        if got != want:
            lost = want[0] - got[0]
            what = f"lost {lost}" if lost > 0 else (f"{-lost} extra" if lost else "a wrong set of")
            return f"subscriber {i}: {what} messages of {want[0]} (checksums differ)"
    return None
