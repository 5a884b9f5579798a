"""The facilities table (Kerrisk's taxonomy): every bench row it names exists,
measurements land in the right rows, and the CLI option runs and prints it."""
from ringipc.bench import facilities
from ringipc.bench.adapters import all_facilities
from ringipc.bench.suite import Summary


def test_named_bench_rows_exist_where_the_transport_is_built():
    known = {f.name for f in all_facilities()}
    named = [f.bench for f in facilities.TAXONOMY if f.bench]
    present = facilities.bench_names(sorted(known))
    assert set(present) <= known and set(present) <= set(named)
    # The core rows are always there; others (new transports, topics) once their adapters are.
    assert {"ringipc.Ring-mpmc", "ringipc.Queue", "ringipc.connect-unix", "ringipc.connect-mq"} <= set(present)


def test_measurements_fill_their_rows():
    summaries = [Summary("ringipc.Ring-mpmc", "throughput", 64, 1, True, rate=2.5e6),
                 Summary("ringipc.Ring-mpmc", "latency", 64, 1, True, median_ns=1500.0),
                 Summary("ringipc.connect-unix", "throughput", 1024, 1, True, rate=9e9),  # not 64 B: ignored
                 Summary("ringipc.connect-fifo", "throughput", 64, 1, False, error="x")]  # failed: ignored
    rows = {r[1]: r for r in facilities.rows(summaries)}
    assert rows["ring (SPSC/MPMC)"][-2:] == ["2.50 M/s", "1.5 us"]
    assert rows["UNIX stream socket"][-2:] == ["-", "-"]
    assert rows["FIFO"][-2:] == ["-", "-"]
    text = facilities.markdown(summaries)
    assert text.count("\n") == len(facilities.TAXONOMY) + 1 and "2.50 M/s" in text


def test_lock_measurements_fill_the_synchronisation_row():
    from ringipc.bench.locks import CONTENDED, UNCONTENDED, LockSummary

    locks = [LockSummary("ringipc.sync.Lock", UNCONTENDED, 1, True, ns=50.0),
             LockSummary("ringipc.sync.Lock", CONTENDED, 1, True, ns=700.0),
             LockSummary("mp.Lock", UNCONTENDED, 1, True, ns=90.0)]  # the peer's numbers stay out of the row
    rows = {r[1]: r for r in facilities.rows([], locks)}
    assert rows["lock, semaphore, event, condition"][-2:] == ["20.00 M/s lock+unlock", "0.70 us contended"]
    assert facilities.rows([])[-3][-2:] == ["-", "-"]
