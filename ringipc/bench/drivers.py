"""Scenarios measured one run per fresh driver process (locks, pools).

A scenario gives a module-level ``measure(*args) -> seconds`` that checks
its own results and raises on a wrong one.  :func:`run_driver` runs it in a
fresh process (the bench's start method), so nothing one run left behind
(a warm cache, a pool's workers, a leaked thread) colours the next, and
turns a raise, a death or a hang into an error text for a FAILED row
instead of taking the whole bench down.  :func:`rotating` orders the runs
as every scenario does (repetitions outermost, the order of the peers in a
group rotating, so none always goes first) and :func:`cells` gathers them
into the medians the tables show.
"""
import os
import signal
import statistics
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple


def _drive(measure: Callable[..., float], args: Tuple[Any, ...], conn: Any) -> None:
    # A group of its own: a driver that hangs or dies is killed with everything it
    # started (a pool's workers, a producer blocked on a full queue), which would
    # otherwise be orphaned and run on, loading the machine for the next rows.
    os.setpgid(0, 0)
    try:
        conn.send(("ok", measure(*args)))
    except BaseException:
        conn.send(("error", traceback.format_exc(limit=3).strip().splitlines()[-1]))


def run_driver(measure: Callable[..., float], args: Tuple[Any, ...], name: str, timeout: float,
               start_method: str) -> Tuple[bool, Any]:
    """``(True, seconds)`` from ``measure(*args)`` in a fresh process, or
    ``(False, why)`` if it raised, died or took more than `timeout` seconds."""
    from ringipc.bench.runner import context

    ctx = context(start_method)
    mine, theirs = ctx.Pipe(duplex=False)
    # Not a daemon: a driver may start processes of its own (a pool's workers).
    proc = ctx.Process(target=_drive, args=(measure, args, theirs), name=name)
    proc.start()
    theirs.close()
    try:
        if not mine.poll(timeout):
            status, value = "error", f"timed out after {timeout:g} s"
        else:
            status, value = mine.recv()
            proc.join(5.0)  # a clean exit: its pools have shut down
    except EOFError:
        status, value = "error", f"driver died (exit code {proc.exitcode})"
    finally:  # also on Ctrl-C, which the driver's own group does not receive
        _kill_group(proc)
        mine.close()
    return status == "ok", value


def _kill_group(proc: Any) -> None:
    """SIGKILL whatever is left of a driver's process group (nothing, after a
    clean run).  The group id cannot be reused while the group has members."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # no group: all gone, or the driver had not made it yet
    if proc.is_alive():
        proc.kill()
    proc.join()


def rotating(groups: Iterable[Sequence[Any]], repeat: int) -> Iterator[Tuple[int, Any]]:
    """(repetition, item) with repetitions outermost; within each group the
    order rotates by one per repetition."""
    groups = list(groups)
    for rep in range(repeat):
        for group in groups:
            k = rep % len(group)
            for item in list(group[k:]) + list(group[:k]):
                yield rep, item


@dataclass
class Cell:
    """The runs of one facility in one case, and their median if all ran."""

    key: Any
    runs: int  # those that ran
    ok: bool
    error: str = ""  # the first failed run's
    values: List[float] = field(default_factory=list)
    median: float = 0.0


def cells(results: Iterable[Any], key: Callable[[Any], Any], value: Callable[[Any], float]) -> List[Cell]:
    """Results grouped by ``key(result)`` (in the order first seen); each
    cell with ``value(result)`` of every run, or the first failure."""
    grouped: Dict[Any, List[Any]] = {}
    for r in results:
        grouped.setdefault(key(r), []).append(r)
    out = []
    for k, runs in grouped.items():
        bad = [r for r in runs if not r.ok]
        if bad:
            out.append(Cell(k, len(runs) - len(bad), False, bad[0].error))
        else:
            values = [value(r) for r in runs]
            out.append(Cell(k, len(runs), True, values=values, median=statistics.median(values)))
    return out


def run_all(groups: Iterable[Sequence[Any]], repeat: int, run_one: Callable[[Any], Any],
            on_result: Optional[Callable[..., Any]] = None) -> List[Any]:
    """``run_one(item)`` for every item of `groups`, `repeat` times, in
    :func:`rotating` order; each result gets its ``repetition`` and goes to
    ``on_result(result, done, total)`` as it comes."""
    groups = [g for g in groups if g]
    total = sum(len(g) for g in groups) * repeat
    results: List[Any] = []
    for rep, item in rotating(groups, repeat):
        res = run_one(item)
        res.repetition = rep
        results.append(res)
        if on_result is not None:
            on_result(res, len(results), total)
    return results


def case_table(title: str, facility_column: str, unit: str, ratio_column: str, cases: Sequence[str],
               summaries: Sequence[Any], value: Callable[[Any], float], values: Callable[[Any], List[float]],
               digits: int, baseline: Optional[Callable[[Any], bool]] = None) -> Any:
    """The table of a scenario whose rows are (case, facility): the median
    `value` in `unit`, its range over repetitions and the ratio to the
    case's baseline; `baseline` marks that row."""
    from ringipc.bench.term import SIMPLE, Table

    t = Table(title=title, title_justify="left", header_style="bold", box=SIMPLE, pad_edge=False)
    for col, justify in (("case", "left"), (facility_column, "left"), (unit, "right"), ("range", "right"),
                         (ratio_column, "right")):
        t.add_column(col, justify=justify, no_wrap=True, style="dim" if col == "range" else None)  # type: ignore[arg-type]  # one of rich's justify names
    shown = [c for c in cases if any(s.case == c for s in summaries)]
    for i, case in enumerate(shown):
        if i:
            t.add_section()
        for j, s in enumerate(x for x in summaries if x.case == case):
            if not s.ok:
                row = ["[red]FAILED[/]", "", ""]
            else:
                spread = f"{min(values(s)):.{digits}f}-{max(values(s)):.{digits}f}" if len(values(s)) > 1 else ""
                mark = " (baseline)" if baseline is not None and baseline(s) else ""
                row = [f"{value(s):.{digits}f}", spread, (f"x{s.ratio:.2f}" if s.ratio is not None else "-") + mark]
            t.add_row(case if j == 0 else "", s.facility, *row)
    return t
