"""``python -m ringipc bench``: argument parsing and the progress display."""
import argparse
import sys
from typing import Any, List, Optional, Sequence

from ringipc.bench import asyncio_rtt, large, locks, pools, suite
from ringipc.bench.fanout import FANOUT
from ringipc.bench.runner import LATENCY, MPMC, START_METHODS, THROUGHPUT

EPILOG = """\
With no option, the focused run: each ringipc facility against the peer a user would
otherwise pick (the first installed of faster-fifo, iceoryx2, zmq, ...) and mp.Queue,
for throughput at 64 B and 64 KiB, round trip, 2x2 MPMC, and locks; --all runs every
facility in every scenario (several minutes), large objects included.
Every run starts fresh processes (forkserver, or spawn), pins producer and consumer to
different cores, sets connections up before timing, and verifies every message
(count, order and content); a run that loses or corrupts anything is FAILED.
Ratios compare with multiprocessing.Queue measured in the same run; in the pools
scenario, each pool on ringipc's context with the same pool on multiprocessing's.
Exit status: 0 all runs passed, 1 some run FAILED, 2 bad arguments.
"""


def build_parser(parser: Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="python -m ringipc bench")
    p.description = "Measure ringipc against multiprocessing, OS pipes, sockets, POSIX mq and third-party queues."
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--only", metavar="NAMES", help="facilities to run, comma-separated, globs allowed ('ringipc.*,os.pipe')")
    p.add_argument("--skip", metavar="NAMES", help="facilities to leave out, comma-separated, globs allowed")
    p.add_argument("--sizes", metavar="SIZES", help="message sizes for throughput, e.g. 64,1K,64K,1M (default: all four)")
    p.add_argument("--all", action="store_true",
                   help="every facility in every scenario but fanout (default: the focused rows, see below)")
    p.add_argument("--scenarios", metavar="LIST",
                   help="any of throughput, latency, mpmc, pools, locks, fanout, asyncio, large (default with --all: "
                        "throughput, latency, mpmc, pools, large; with --only: the same but large; fanout is "
                        "1 publisher -> 1 and -> 4 subscribers at 64 B and 1 MiB; large is objects of 1 MiB, "
                        "16 MiB and 256 MiB, bytes and NumPy arrays, in GB/s, with --quick 1 and 16 MiB)")
    p.add_argument("--repeat", type=int, metavar="N", help="repetitions of every cell (default 3, 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="two sizes, one repetition, short runs: under 30 s")
    p.add_argument("--target", type=float, metavar="SECONDS", help="timed length each run aims for (default 0.15)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="limit on one run, set-up included (default 30)")
    p.add_argument("--no-pin", action="store_true", help="do not pin producer and consumer to separate cores")
    p.add_argument("--start-method", choices=START_METHODS,
                   help="how each run's fresh processes start (default forkserver: forked from a "
                        "pristine server process; spawn: a new interpreter each, slower to start)")
    p.add_argument("--json", metavar="PATH", help="write every run, machine info and versions as JSON")
    p.add_argument("--plot", metavar="PATH",
                   help="write figures (ratio to mp.Queue per scenario, latency p50/p99) as PATH-*.png and "
                        ".svg (needs matplotlib)")
    p.add_argument("--list", action="store_true", help="list the facilities and whether they can run here, then exit")
    p.add_argument("--facilities", action="store_true",
                   help="one row per kind of IPC (Kerrisk's taxonomy): measure each at 64 B and print the table")
    return p


FULL_SCENARIOS = f"{THROUGHPUT},{LATENCY},{MPMC},{pools.POOLS}"
FOCUS_SCENARIOS = f"{THROUGHPUT},{LATENCY},{MPMC},{locks.LOCKS}"


def focused(args: Any) -> bool:
    """No option chose what to run: the focused default (ringipc/bench/focus.py)."""
    return not (args.all or args.only or args.scenarios or args.sizes or args.facilities)


def settings_from(args: Any) -> Any:
    s = suite.Settings()
    args.focused = focused(args)  # decided before the defaults below fill args in
    if args.focused:
        from ringipc.bench import focus

        s.sizes, s.target = list(focus.SIZES), 0.1  # a dozen rows in about half a minute
        args.scenarios = FOCUS_SCENARIOS
    elif not args.scenarios:
        # Large objects take minutes and gigabytes: with --all, not with a mere --only.
        args.scenarios = FULL_SCENARIOS + (f",{large.LARGE}" if args.all else "")
    if args.quick:
        s.sizes, s.repeat, s.target, s.timeout = list(suite.QUICK_SIZES), 1, 0.04, 10.0
    if args.start_method:
        s.start_method = args.start_method
    if args.sizes:
        from ringipc.bench.payload import MIN_SIZE
        from ringipc.bench.report import parse_size

        try:
            s.sizes = sorted({parse_size(t) for t in args.sizes.split(",") if t.strip()})
        except ValueError:
            raise SystemExit(f"--sizes: cannot read {args.sizes!r} (use e.g. 64,1K,64K,1M)")
        if not s.sizes or s.sizes[0] < MIN_SIZE:
            raise SystemExit(f"--sizes: every size must be at least {MIN_SIZE} bytes")
        s.mpmc_size = s.latency_size = max(MIN_SIZE, min(64, s.sizes[0]))
    scenarios = [t.strip() for t in args.scenarios.split(",") if t.strip()]
    unknown = set(scenarios) - {THROUGHPUT, LATENCY, MPMC, pools.POOLS, locks.LOCKS, FANOUT, asyncio_rtt.ASYNCIO,
                                large.LARGE}
    if unknown or not scenarios:
        raise SystemExit(f"--scenarios: unknown {', '.join(sorted(unknown)) or 'empty list'}")
    s.scenarios = scenarios
    if args.repeat is not None:
        if args.repeat < 1:
            raise SystemExit("--repeat must be at least 1")
        s.repeat = args.repeat
    if args.target is not None:
        s.target = args.target
    if args.timeout is not None:
        s.timeout = args.timeout
    s.pin = not args.no_pin
    return s


def _list(console: Any, facilities: Any) -> int:
    from ringipc.bench.term import Table

    table = Table("facility", "runs here", header_style="bold")
    for f in facilities:
        try:
            ok, why = f.available()
        except Exception as exc:  # a broken optional package says why, it does not stop the list
            ok, why = False, f"{type(exc).__name__}: {exc}"
        table.add_row(f.name, "yes" if ok else f"[yellow]no[/]: {why}")
    console.print(table)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    # Without rich, plain-text tables and a one-line progress report (ringipc/bench/term.py).
    from ringipc.bench import adapters, report
    from ringipc.bench.term import BarColumn, Console, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if args.facilities:
        from ringipc.bench.facilities import bench_names

        # One representative per kind, 64 B throughput and round trip.
        args.only = ",".join(bench_names([f.name for f in adapters.all_facilities()]))
        args.sizes, args.scenarios = "64", f"{THROUGHPUT},{LATENCY},{locks.LOCKS}"
    settings = settings_from(args)
    # Pool rows ("ringipc Pool.map", ...) are not channel facilities: their
    # patterns are taken out before the channels' selection sees them.
    pool_only = [p for p in (args.only or "").split(",") if p.strip() and pools.claims(p.strip())]
    channel_only = ",".join(p for p in (args.only or "").split(",") if p.strip() and p not in pool_only)
    channel_skip = ",".join(p for p in (args.skip or "").split(",") if p.strip() and not pools.claims(p.strip()))
    run_pools = pools.POOLS in settings.scenarios and (not args.only or pool_only)
    run_locks = locks.LOCKS in settings.scenarios
    run_async = asyncio_rtt.ASYNCIO in settings.scenarios
    run_large = large.LARGE in settings.scenarios
    run_channels = (bool(set(settings.scenarios) - {pools.POOLS, locks.LOCKS, asyncio_rtt.ASYNCIO, large.LARGE})
                    and (not args.only or channel_only))
    try:
        facilities = adapters.select(channel_only or None, channel_skip or None) if run_channels else []
    except ValueError as exc:
        print(f"ringipc bench: {exc}", file=sys.stderr)
        return 2
    if args.focused and not args.list:
        from ringipc.bench import focus

        facilities, settings.focus = focus.select(facilities)
    console = Console(highlight=False)  # numbers are styled by the tables, not guessed at
    if args.list:
        return _list(console, facilities)
    if args.plot:
        try:
            import matplotlib  # noqa: F401  (fail before minutes of measuring, not after)
        except ImportError as exc:
            print(f"--plot needs matplotlib ({exc}); install it with: pip install 'ringipc[bench]'", file=sys.stderr)
            return 2

    results: List[Any] = []
    skips: List[Any] = []
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    interrupted = False
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("planning", total=None)

        def on_start(cell: Any, rep: int, index: int, total: int) -> None:
            label = f"{cell.facility.name} {cell.scenario} {report.human_size(cell.size)}"
            progress.update(task, total=total, description=f"rep {rep + 1}/{settings.repeat} {label}")

        def on_result(result: Any, done: Any, total: int) -> None:
            results.append(result)
            progress.update(task, completed=done)

        def on_pool(result: Any, done: Any, total: int) -> None:
            pool_results.append(result)
            progress.update(task, total=total, completed=done,
                            description=f"pools: {result.facility} {result.workload}")

        def on_lock(result: Any, done: Any, total: int) -> None:
            lock_results.append(result)
            progress.update(task, total=total, completed=done, description=f"locks: {result.facility} {result.case}")

        def on_async(result: Any, done: Any, total: int) -> None:
            async_results.append(result)
            progress.update(task, total=total, completed=done, description=f"asyncio: {result.facility} {result.case}")

        def on_large(result: Any, done: Any, total: int) -> None:
            large_results.append(result)
            progress.update(task, total=total, completed=done,
                            description=f"large: {result.facility} {report.human_size(result.size)} {result.kind}")

        pool_results: List[Any] = []
        lock_results: List[Any] = []
        async_results: List[Any] = []
        large_results: List[Any] = []
        try:
            if run_channels:
                suite.run(facilities, settings, on_result=on_result, on_start=on_start, skips=skips)
            if run_locks:
                progress.update(task, total=None, completed=0, description="locks")
                locks.run(settings, quick=args.quick, on_result=on_lock)
            if run_async:
                progress.update(task, total=None, completed=0, description="asyncio")
                asyncio_rtt.run(settings, quick=args.quick, on_result=on_async)
            if run_large:
                progress.update(task, total=None, completed=0, description="large objects")
                large.run(settings, quick=args.quick, only=_chooser(args.only, args.skip), on_result=on_large)
            if run_pools:
                progress.update(task, total=None, completed=0, description="pools")
                pools.run(settings, quick=args.quick, only=",".join(pool_only) or None, skip=args.skip,
                          on_result=on_pool)
        except KeyboardInterrupt:
            interrupted = True
    summaries = suite.summarize(results)
    pool_summaries = pools.summarize(pool_results)
    lock_summaries = locks.summarize(lock_results)
    async_summaries = asyncio_rtt.summarize(async_results)
    large_summaries = large.summarize(large_results)
    report.print_report(console, summaries, skips, settings)
    # Each extra scenario's table, then what failed in it (the cell's own words).
    for table, extra, cell in ((locks.table, lock_summaries, lambda s: s.case),
                               (asyncio_rtt.table, async_summaries, lambda s: s.case),
                               (large.table, large_summaries, lambda s: f"{report.human_size(s.size)} {s.kind}"),
                               (pools.table, pool_summaries, lambda s: s.workload)):
        if extra:
            console.print(table(extra))
            console.print()
            for s in extra:
                if not s.ok:
                    console.print(f"  [red]{s.facility}[/] ({cell(s)}): {s.error}")
    if args.facilities:
        from ringipc.bench.facilities import print_table

        print_table(console, summaries, lock_summaries)
    if interrupted:
        console.print("[yellow]Interrupted: the tables show the runs that finished.[/]")
    if args.json:
        report.write_json(args.json, results, summaries, skips, settings)
        if pool_results or lock_results or async_results or large_results:
            import dataclasses
            import json

            with open(args.json) as f:
                data = json.load(f)
            if pool_results:
                data["pools"] = {"runs": [dict(dataclasses.asdict(r), rate=r.rate) for r in pool_results],
                                 "summary": [dataclasses.asdict(s) for s in pool_summaries]}
            if large_results:
                data["large"] = {"runs": [dict(dataclasses.asdict(r), rate=r.rate) for r in large_results],
                                 "summary": [dataclasses.asdict(s) for s in large_summaries]}
            if lock_results:
                data["locks"] = {"runs": [dict(dataclasses.asdict(r), ns=r.ns) for r in lock_results],
                                 "summary": [dataclasses.asdict(s) for s in lock_summaries]}
            if async_results:
                data["asyncio"] = {"runs": [dict(dataclasses.asdict(r), us=r.us) for r in async_results],
                                   "summary": [dataclasses.asdict(s) for s in async_summaries]}
            with open(args.json, "w") as f:
                json.dump(data, f, indent=1)
                f.write("\n")
        console.print(f"JSON written to {args.json}")
    if args.plot:
        from ringipc.bench.plot import write_plots

        written = write_plots(args.plot, summaries, lock_summaries)
        console.print(f"Figures written: {', '.join(written)}" if written else "No figure: no run finished")
    if interrupted:
        return 130
    return 1 if any(not s.ok for s in [*summaries, *pool_summaries, *lock_summaries, *async_summaries,
                                       *large_summaries]) else 0


def _chooser(only: Optional[str], skip: Optional[str]) -> Any:
    """Which large-object rows --only and --skip leave in (glob patterns on their names)."""
    import fnmatch

    keep = [p.strip() for p in (only or "").split(",") if p.strip()]
    drop = [p.strip() for p in (skip or "").split(",") if p.strip()]
    return lambda name: ((not keep or any(fnmatch.fnmatchcase(name, p) for p in keep))
                         and not any(fnmatch.fnmatchcase(name, p) for p in drop))
