"""ringipc's fallback transports, reached through ``connect``/``listen`` by address.

The consumer end listens and the producer end connects, each in its own child
before anything is timed: the accept runs in a thread so both ends of a round
trip can be opened in either order, and ``connected()`` waits for it.
"""
import os
import socket
import tempfile
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Tuple

from ringipc.bench.adapters.base import Channel, ConnectionPair, Deferred, Facility, into_receiver
from ringipc.bench.adapters.framing import LARGE, FrameReader, file_writev, frame_sender

_CONNECT_PATIENCE = 20.0  # seconds a connector retries while its listener starts up


def _api(scheme: str) -> Tuple[bool, str]:
    try:
        from ringipc.channels.address import lookup

        lookup(scheme)  # imports the transport module that registers the scheme
    except Exception as exc:  # ImportError, or ringipc's AddressError for a scheme not built yet
        return False, f"{scheme}:// not available: {exc}"
    return True, ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Transport(Facility):
    """One address scheme in message mode (send_bytes / recv_bytes)."""

    copies_on_send = True
    mode = "message"

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme

    @property
    def name(self) -> str:  # type: ignore[override]  # a class attribute in Facility
        return f"ringipc.connect-{self.scheme}"

    def available(self) -> Tuple[bool, str]:
        return _api(self.scheme)

    def _address(self) -> str:
        tag = f"ringipc-bench-{uuid.uuid4().hex[:12]}"
        if self.scheme == "tcp":
            return f"tcp://127.0.0.1:{_free_port()}"
        if self.scheme == "mq":
            return f"mq:///{tag}"
        if self.scheme == "shm":
            return f"shm://{tag}"
        return f"{self.scheme}://{os.path.join(tempfile.gettempdir(), tag)}"

    def _options(self, size: int) -> Dict[str, Any]:
        if self.scheme == "mq":
            return {"max_message_size": size + 1}  # control messages are one byte longer than any data
        return {}

    def supports(self, size: int, producers: int = 1, consumers: int = 1) -> Tuple[bool, str]:
        if self.scheme == "mq":
            from ringipc.channels.transports.mq_limits import check_limits

            try:
                check_limits(10, size + 1)
            except OSError as exc:
                return False, str(exc)
        return super().supports(size, producers, consumers)

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        address = self._address()

        def close() -> None:
            path = address.partition("://")[2]
            if self.scheme in ("unix", "unixpacket", "fifo") and os.path.exists(path):
                os.unlink(path)

        return Channel([("connect", address)], [("listen", address)], close)

    # -- child side ----------------------------------------------------------------------
    def _state(self) -> Dict[Any, Any]:
        return self.__dict__.setdefault("_open", {})

    def _connect(self, address: str, size: int) -> Any:
        from ringipc.channels.address import connect

        deadline = time.monotonic() + _CONNECT_PATIENCE
        while True:
            try:
                return connect(address, mode=self.mode, timeout=_CONNECT_PATIENCE)
            except (ConnectionRefusedError, FileNotFoundError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def _listen(self, end: Any, size: int) -> Any:
        """Start listening; the channel arrives in ``holder[0]`` once ``connected()`` returns."""
        from ringipc.channels.address import listen

        listener = listen(end[1], mode=self.mode, **self._options(size))
        holder, errors = [None], []

        def accept() -> None:
            try:
                holder[0] = listener.accept(timeout=_CONNECT_PATIENCE)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        self._state()[end] = (listener, holder, thread, errors)
        return holder

    def connected(self) -> None:
        for listener, holder, thread, errors in self._state().values():
            if thread is not None:
                thread.join()
                if errors:
                    raise errors[0]

    def open_sender(self, end: Any, size: int) -> Callable[[Any], Any]:
        channel = self._connect(end[1], size)
        self._state()[end] = (None, [channel], None, [])
        return channel.send_bytes

    def open_receiver(self, end: Any, size: int) -> Callable[[], Any]:
        holder = self._listen(end, size)
        if size >= LARGE:
            return Deferred(lambda: into_receiver(holder[0].recv_bytes_into, size))
        return Deferred(lambda: holder[0].recv_bytes)

    def close_end(self, end: Any) -> None:
        listener, holder, _, _ = self._state().pop(end, (None, [None], None, []))
        if holder[0] is not None:
            holder[0].close()
        if listener is not None:
            listener.close()


class StreamTransport(Transport):
    """Byte-stream mode (a file object) over a UNIX socket, length-framed like os.pipe."""

    mode = "stream"

    @property
    def name(self) -> str:  # type: ignore[override]  # a class attribute in Facility
        return f"ringipc.bytestream-{self.scheme}"

    def open_sender(self, end: Any, size: int) -> Callable[[Any], Any]:
        stream = self._connect(end[1], size)
        self._state()[end] = (None, [stream], None, [])
        return frame_sender(stream.write, lambda parts: file_writev(stream, parts))

    def open_receiver(self, end: Any, size: int) -> Callable[[], Any]:
        holder = self._listen(end, size)
        return Deferred(lambda: FrameReader(holder[0].readinto).recv)


class PipePair(ConnectionPair):
    """``pipe_pair()``: the anonymous os.pipe channel handed from parent to child."""

    name = "ringipc.pipe_pair"

    def available(self) -> Tuple[bool, str]:
        try:
            from ringipc.channels.transports.pipe import pipe_pair  # noqa: F401
        except ImportError as exc:
            return False, f"ringipc.channels.transports.pipe not available: {exc}"
        return True, ""

    def make_pair(self, size: int) -> Any:
        from ringipc.channels.transports.pipe import pipe_pair

        return pipe_pair(duplex=False)


FACILITIES: List[Facility] = [Transport(s) for s in ("shm", "unix", "unixpacket", "tcp", "fifo", "mq")]
FACILITIES += [StreamTransport("unix"), PipePair()]
