"""reveal_type() of the public API, read by tests/test_typing.py (not run)."""
import ringipc

reveal_type(ringipc.Queue[int]().get())  # R: int
reveal_type(ringipc.SimpleQueue[str]().get())  # R: str
reveal_type(ringipc.JoinableQueue[bytes]().get_many())  # R: list[bytes]
reveal_type(ringipc.Ring().recv_bytes())  # R: bytes
reveal_type(ringipc.Ring().recv_bytes_many(4))  # R: list[bytes]
reveal_type(ringipc.Ring.attach("x"))  # R: ringipc.core._ring.Ring
reveal_type(ringipc.Pipe())  # R: tuple[ringipc.mp.connection.Connection, ringipc.mp.connection.Connection]
reveal_type(ringipc.connect("unix:///tmp/x"))  # R: ringipc.channels.channel.Channel
reveal_type(ringipc.connect("unix:///tmp/x", mode="stream"))  # R: io.RawIOBase
reveal_type(ringipc.stream_pair())  # R: tuple[ringipc.core.stream.RingStream, ringipc.core.stream.RingStream]
