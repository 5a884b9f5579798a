"""``python -m ringipc`` (also the ``ringipc`` console script): ``bench`` and ``cleanup``."""
import argparse
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="ringipc", description="ringipc command-line tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("bench", help="benchmark ringipc against multiprocessing and other IPC", add_help=False)
    sub.add_parser("cleanup", help="remove shared-memory segments left behind by dead processes", add_help=False)
    # Each subcommand parses its own arguments, so its --help is its own.
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    if argv[0] not in ("bench", "cleanup"):
        parser.parse_args(argv)  # --help exits 0; anything else exits 2 with argparse's message
        return 2
    command, rest = argv[0], argv[1:]
    if command == "bench":
        from ringipc.bench.cli import main as bench_main

        return bench_main(rest)
    # Imported here so that bench works in a build where cleanup is missing.
    from ringipc.core.cleanup import main as cleanup_main

    return cleanup_main(rest)


if __name__ == "__main__":
    sys.exit(main())
