"""Third-party and OS message queues: POSIX mq, faster-fifo, pyzmq.

Each import happens inside ``available``/the child so a missing package only
marks its facility skipped.
"""
import importlib
import os
import tempfile
import uuid
from typing import Any, Callable, List, Optional, Tuple

from ringipc.bench.adapters.base import BATCH_SCENARIOS, Channel, Facility, SharedQueue


def _have(module: str, extra: str = "ringipc[bench]") -> Tuple[bool, str]:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return False, f"{module} not installed ({extra}): {exc}"
    return True, ""


class PosixMq(Facility):
    name = "posix-mq"
    mpmc = True
    copies_on_send = True
    depth = 10  # Linux's default fs.mqueue.msg_max for unprivileged users

    def available(self) -> Tuple[bool, str]:
        return _have("posix_ipc", "ringipc's own dependency")

    def _create(self, size: int) -> Any:
        import posix_ipc

        return posix_ipc.MessageQueue(
            f"/ringipc-bench-{uuid.uuid4().hex[:12]}", posix_ipc.O_CREX,
            max_messages=self.depth, max_message_size=size,
        )

    def supports(self, size: int, producers: int = 1, consumers: int = 1) -> Tuple[bool, str]:
        try:
            q = self._create(size)
        except (OSError, ValueError, Exception) as exc:  # posix_ipc raises its own classes
            return False, f"cannot create a queue of {size} B messages ({exc}; see /proc/sys/fs/mqueue/msgsize_max)"
        q.close()
        q.unlink()
        return super().supports(size, producers, consumers)

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        q = self._create(size)

        def close() -> None:
            q.close()
            q.unlink()

        return Channel([q.name] * producers, [q.name] * consumers, close)

    def open_sender(self, name: str, size: int) -> Callable[[Any], Any]:
        import posix_ipc

        return posix_ipc.MessageQueue(name).send

    def open_receiver(self, name: str, size: int) -> Callable[[], Any]:
        import posix_ipc

        receive = posix_ipc.MessageQueue(name).receive
        return lambda: receive()[0]


class FasterFifo(SharedQueue):
    name = "faster-fifo"

    def available(self) -> Tuple[bool, str]:
        return _have("faster_fifo")

    def make_queue(self, size: int) -> Any:
        from faster_fifo import Queue

        # Its buffer must hold a pickled message plus framing, with room to stream.
        return Queue(max_size_bytes=max(4 << 20, 4 * size + 4096))


class FasterFifoMany(FasterFifo):
    name = "faster-fifo.many"
    batched = True
    scenarios = BATCH_SCENARIOS

    def open_batch_sender(self, end: Any, size: int) -> Callable[[List[Any]], Any]:
        return end.put_many

    def open_batch_receiver(self, end: Any, size: int) -> Optional[Callable[[], List[Any]]]:
        get_many = end.get_many
        return lambda: get_many(max_messages_to_get=64)


class ZmqPushPull(Facility):
    """PUSH/PULL over ipc:// (a UNIX socket), the usual zmq pipeline between processes.

    Many-to-many: every consumer binds a PULL socket and every producer's PUSH
    connects to all of them.  PUSH deals messages round-robin over its peers
    and, with no send high-water mark, never skips one, so each consumer gets
    exactly one of each producer's stop markers, after that producer's last
    message to it (each peer is its own FIFO pipe)."""

    name = "zmq-push-pull"
    mpmc = True
    # Not a copying sender: above zmq.COPY_THRESHOLD pyzmq sends without copying,
    # so it must be handed immutable bytes, as real users do.
    copies_on_send = False

    def available(self) -> Tuple[bool, str]:
        return _have("zmq")

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        paths = tuple(os.path.join(tempfile.gettempdir(), f"ringipc-bench-{uuid.uuid4().hex[:12]}.ipc")
                      for _ in range(consumers))

        def close() -> None:
            for path in paths:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

        return Channel([("connect", paths)] * producers, [("bind", (path,)) for path in paths], close)

    def _socket(self, end: Any, kind: int) -> Any:
        import zmq

        how, paths = end
        sock: Any = zmq.Context.instance().socket(kind)  # Any: pyzmq's types only where it is installed
        monitor = None
        if how == "connect":
            sock.setsockopt(zmq.SNDHWM, 0)
            monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED)
        for path in paths:
            getattr(sock, how)(f"ipc://{path}")
        # A round trip opens two ends in one process: remember each socket by its end.
        self.__dict__.setdefault("_socks", {})[end] = (sock, monitor, len(paths))
        return sock

    def open_sender(self, end: Any, size: int) -> Callable[[Any], Any]:
        import zmq

        return self._socket(end, zmq.PUSH).send

    def open_receiver(self, end: Any, size: int) -> Callable[[], Any]:
        import zmq

        return self._socket(end, zmq.PULL).recv

    def connected(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        # connect() returns before the connection exists (and retries every 100 ms
        # if the peer was not bound yet): wait until every peer is connected, so
        # that the round-robin covers them all from the first message and no
        # reconnect delay lands in the timed region.
        for sock, monitor, peers in self.__dict__.get("_socks", {}).values():
            if monitor is None:
                continue
            for _ in range(peers):
                if not monitor.poll(20_000):
                    raise TimeoutError("zmq PUSH socket did not connect")
                recv_monitor_message(monitor)
            sock.disable_monitor()
            monitor.close()

    def close_end(self, end: Any) -> None:
        import zmq

        socks = self.__dict__.get("_socks", {})
        sock, _, _ = socks.pop(end, (None, None, None))
        if sock is not None:
            # Linger until every queued message has reached the peer.
            sock.close(linger=-1)
        if not socks:
            zmq.Context.instance().term()


FACILITIES = [PosixMq(), FasterFifo(), FasterFifoMany(), ZmqPushPull()]
