"""multiprocessing's own channels: the baseline every ratio is taken against."""
import multiprocessing

from ringipc.bench.adapters.base import Channel, Facility

_ctx = multiprocessing.get_context("spawn")


class MpQueue(Facility):
    name = "mp.Queue"
    mpmc = True

    def setup(self, size, producers=1, consumers=1):
        q = _ctx.Queue()
        return Channel([q] * producers, [q] * consumers, q.close)

    def open_sender(self, end, size):
        return end.put

    def open_receiver(self, end, size):
        return end.get

    def close_end(self, end):
        # put() hands objects to a feeder thread: wait until it has written them all.
        end.close()
        end.join_thread()


class MpSimpleQueue(Facility):
    name = "mp.SimpleQueue"
    mpmc = True

    def setup(self, size, producers=1, consumers=1):
        q = _ctx.SimpleQueue()
        return Channel([q] * producers, [q] * consumers, q.close)

    def open_sender(self, end, size):
        return end.put

    def open_receiver(self, end, size):
        return end.get


class MpPipe(Facility):
    """The default duplex Pipe, as users create it; raw bytes, no pickling."""

    name = "mp.Pipe"
    copies_on_send = True

    def setup(self, size, producers=1, consumers=1):
        a, b = _ctx.Pipe()

        def close():
            a.close()
            b.close()

        return Channel([a], [b], close)

    def open_sender(self, end, size):
        return end.send_bytes

    def open_receiver(self, end, size):
        if size < (64 << 10):
            return end.recv_bytes
        buf = bytearray(size)

        def recv():
            got = end.recv_bytes_into(buf)
            return buf if got == size else bytes(got)

        return recv


FACILITIES = [MpQueue(), MpSimpleQueue(), MpPipe()]
