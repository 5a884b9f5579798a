"""Byte-stream mode: bytes come out as they went in, whatever the chunking."""
import io
import multiprocessing
import random
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _channel_support import BYTESTREAM_TRANSPORTS, channel_pair, peer_process
from _channel_support import no_leftovers  # noqa: F401  (fixture)
from _stream_support import BIG_TRANSFER, read_hashed, read_in_chunks, write_all, write_random_gib
from ringipc.channels.bytestream import ByteStream
from ringipc.core.stream import RingStream

pytestmark = pytest.mark.usefixtures("no_leftovers")
streams = pytest.mark.parametrize("transport", BYTESTREAM_TRANSPORTS)


def ends(a, b):
    """(reader, writer) of a stream pair, whichever way the transport hands them out."""
    return (a, b) if a.readable() and b.writable() else (b, a)


@streams
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    writes=st.lists(st.integers(0, 70000), max_size=12),
    reads=st.lists(st.integers(1, 90000), min_size=1, max_size=12),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_chunking_reproduces_the_bytes(transport, tmp_path, writes, reads, seed):
    rng = random.Random(seed)
    chunks = [rng.randbytes(n) for n in writes]
    with channel_pair(transport, tmp_path, mode="stream") as (a, b):
        reader, writer = ends(a, b)
        assert isinstance(reader, (ByteStream, RingStream)) and isinstance(reader, io.RawIOBase)

        def produce():
            for chunk in chunks:
                write_all(writer, chunk)
            writer.close()  # EOF marks the end of the concatenation

        t = threading.Thread(target=produce)
        t.start()
        got = read_in_chunks(reader, reads)
        t.join()
    assert got == b"".join(chunks)


@streams
def test_buffered_and_text_layers_stack(transport, tmp_path):
    with channel_pair(transport, tmp_path, mode="stream") as (a, b):
        reader, writer = ends(a, b)
        out = io.TextIOWrapper(io.BufferedWriter(writer), encoding="utf-8")
        out.write("first line\nsecond é\n")
        out.flush()
        lines = io.TextIOWrapper(io.BufferedReader(reader), encoding="utf-8")
        assert lines.readline() == "first line\n"
        assert lines.readline() == "second é\n"
        out.close()
        assert lines.readline() == ""


@streams
def test_read_timeout(transport, tmp_path):
    with channel_pair(transport, tmp_path, mode="stream") as (a, b):
        reader, writer = ends(a, b)
        reader.timeout = 0.01
        with pytest.raises(TimeoutError):
            reader.read(10)
        write_all(writer, b"data")
        assert reader.read(10) == b"data"


def produce_big(stream, report):
    report.send(write_random_gib(stream, seed=1234))


@pytest.mark.parametrize("transport", ["unix"])
def test_large_transfer_between_processes(transport, tmp_path):
    report_r, report_w = multiprocessing.Pipe(duplex=False)
    with peer_process(transport, tmp_path, produce_big, report_w, mode="stream") as (stream, proc):
        total, digest = read_hashed(stream)
        proc.join(120)
        assert proc.exitcode == 0
    assert total == BIG_TRANSFER
    assert report_r.poll(60)
    assert digest == report_r.recv()
