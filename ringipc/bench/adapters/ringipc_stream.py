"""ringipc's byte-stream mode on the ring: ``stream_pair()`` handed from parent
to children, and ``shm://`` in ``mode="stream"``.

A byte stream has no boundaries, so messages are length-framed exactly as for
os.pipe (same FrameReader, same vectored-write helper): the numbers differ only
by what carries the bytes.
"""
from typing import Any, Callable, Tuple

from ringipc.bench.adapters.base import Channel, Facility
from ringipc.bench.adapters.framing import FrameReader, file_writev, frame_sender
from ringipc.bench.adapters.ringipc_transports import StreamTransport

#: twice the largest default message size, so a 1 MiB message is one record
CAPACITY = 4 << 20


class RingStreamPair(Facility):
    """``ringipc.stream_pair()``: one writer, one reader, no socket on the data path."""

    name = "ringipc.stream_pair"
    copies_on_send = True

    def available(self) -> Tuple[bool, str]:
        try:
            from ringipc.core.stream import stream_pair  # noqa: F401
        except ImportError as exc:
            return False, f"ringipc.core.stream not available: {exc}"
        return True, ""

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        from ringipc.core.stream import stream_pair

        w, r = stream_pair(CAPACITY)

        def close() -> None:
            w.close()
            r.close()

        return Channel([w], [r], close)

    def open_sender(self, end: Any, size: int) -> Callable[[Any], Any]:
        return frame_sender(end.write, lambda parts: file_writev(end, parts))

    def open_receiver(self, end: Any, size: int) -> Callable[[], Any]:
        return FrameReader(end.readinto).recv

    def close_end(self, end: Any) -> None:
        end.close()


FACILITIES = [RingStreamPair(), StreamTransport("shm")]
