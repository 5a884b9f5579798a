"""Large objects, 1 producer process -> 1 consumer: the rows of the bench's
``large`` scenario (ringipc/bench/large.py: GB/s of bytes objects and NumPy
arrays of 1 MiB, 16 MiB and 256 MiB through ringipc.Queue, ringipc.Pipe, an
shm:// channel, multiprocessing.Queue, faster-fifo, pyzmq copy=False, the raw
ring as the ceiling and memcpy, ratios from the same run), here in this
process without the bench's driver processes (the zero-copy receive by size:
benchmarks/lease_latency.py):

    python benchmarks/large_objects.py [--sizes 1M,16M,256M] [--total 512M] [--kinds numpy,bytes]

The same rows with repetitions and medians: ``python -m ringipc bench --scenarios large``.
"""
import argparse

from ringipc.bench import large
from ringipc.bench.report import parse_size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1M,16M,256M")
    parser.add_argument("--total", default="512M", help="bytes per timed row")
    parser.add_argument("--kinds", default="numpy,bytes")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    total = parse_size(args.total)
    for size in sizes:
        count = max(large.MIN_OBJECTS, total // size)
        for kind in args.kinds.split(","):
            results = []
            for name in large.FACILITIES:
                why = large.available(name)
                if why:
                    print(f"{size >> 20:>4} MiB {kind:<6} {name:<18} not run: {why}")
                    continue
                results.append(large.LargeResult(name, kind, size, count, seconds=large.measure(name, kind, size, count)))
            for s in large.summarize(results):
                ring = f"{s.vs_ring:6.1%} of ring" if s.vs_ring is not None else ""
                mp = f"x{s.vs_mp:.1f} mp.Queue" if s.vs_mp is not None else ""
                print(f"{size >> 20:>4} MiB {kind:<6} {s.facility:<18} {s.rate:7.2f} GB/s  {ring}  {mp}", flush=True)


if __name__ == "__main__":
    main()
