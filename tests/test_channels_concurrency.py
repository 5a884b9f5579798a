"""Several processes connect to one listener at once; the listener serves
them all through one selector.  Every message carries (producer, sequence,
checksum): per-producer order and exactly-once totals are checked."""
import hashlib
import multiprocessing
import selectors

import pytest

from _channel_support import address_for
from _channel_support import no_leftovers  # noqa: F401  (fixture)
from ringipc.channels.address import connect, listen

pytestmark = pytest.mark.usefixtures("no_leftovers")

PRODUCERS = 4
MESSAGES = 200


def produce(address, producer):
    with connect(address, timeout=60) as ch:
        for seq in range(MESSAGES):
            body = hashlib.shake_256(f"{producer}:{seq}".encode()).digest(seq % 300)
            ch.send((producer, seq, hashlib.sha256(body).hexdigest(), body))
        assert ch.recv(timeout=60) == ("ack", producer)


@pytest.mark.parametrize("transport", ["fifo", "unix", "unix-abstract", "unixpacket", "tcp"])
def test_many_producers_one_listener(transport, tmp_path):
    ctx = multiprocessing.get_context("fork")
    with listen(address_for(transport, tmp_path)) as lst, selectors.DefaultSelector() as sel:
        procs = [ctx.Process(target=produce, args=(lst.address, p)) for p in range(PRODUCERS)]
        for proc in procs:
            proc.start()
        channels = [lst.accept(timeout=60) for _ in procs]
        for ch in channels:
            sel.register(ch.fileno(), selectors.EVENT_READ, ch)
        next_seq = {}
        done = 0
        while done < PRODUCERS:
            events = sel.select(60)
            assert events, "no producer made progress"
            for key, _ in events:
                producer, seq, digest, body = key.data.recv(timeout=60)
                assert seq == next_seq.get(producer, 0), f"producer {producer} out of order"
                assert hashlib.sha256(body).hexdigest() == digest
                next_seq[producer] = seq + 1
                if seq == MESSAGES - 1:
                    sel.unregister(key.fileobj)
                    key.data.send(("ack", producer))
                    done += 1
        for proc in procs:
            proc.join(60)
            assert proc.exitcode == 0
        for ch in channels:
            ch.close()
    assert next_seq == {p: MESSAGES for p in range(PRODUCERS)}
