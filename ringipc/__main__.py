"""``python -m ringipc`` (also the ``ringipc`` console script): ``bench``, ``cleanup``, ``doctor``, ``ls``, ``run``."""
import argparse
import sys
from typing import List, Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="ringipc", description="ringipc command-line tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("bench", help="benchmark ringipc against multiprocessing and other IPC", add_help=False)
    sub.add_parser("cleanup", help="remove shared-memory segments left behind by dead processes", add_help=False)
    sub.add_parser("doctor", help="check this machine for what stands in ringipc's way, and say how to fix it",
                   add_help=False)
    sub.add_parser("ls", help="list every ringipc object on this machine: fill, peers, sleepers (--watch: a top)",
                   add_help=False)
    sub.add_parser("run", help="run a Python script with multiprocessing on ringipc (ringipc.install())",
                   add_help=False)
    # Each subcommand parses its own arguments, so its --help is its own.
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    if argv[0] not in ("bench", "cleanup", "doctor", "ls", "run"):
        parser.parse_args(argv)  # --help exits 0; anything else exits 2 with argparse's message
        return 2
    command, rest = argv[0], argv[1:]
    if command == "bench":
        from ringipc.bench.cli import main as bench_main

        return bench_main(rest)
    if command == "run":
        return _run(rest)
    if command == "ls":
        from ringipc.ls import main as ls_main

        return ls_main(rest)
    if command == "doctor":
        from ringipc.doctor import main as doctor_main

        return doctor_main(rest)
    # Imported here so that bench works in a build where cleanup is missing.
    from ringipc.cleanup import main as cleanup_main

    return cleanup_main(rest)


def _run(argv: List[str]) -> int:
    """``run script.py [args]``: the script runs as ``python script.py [args]``
    would, with ringipc.install() in effect (and in its children)."""
    import os
    import runpy

    if not argv or argv[0] in ("-h", "--help"):
        print("usage: ringipc run SCRIPT [ARGS...]\n\n"
              "Run SCRIPT as __main__ with multiprocessing's queues and pipes replaced by\n"
              "ringipc's (see ringipc.install()).", file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    from ringipc import install

    install()
    script = argv[0]
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
