"""Datagram sockets and System V message queues: ringipc's ``unixgram://``,
``sysvmq://`` and ``udp://`` channels, each beside a hand-written reference
that makes the plain calls (``socket.send``/``recv_into`` on a connected pair
of datagram sockets; ``sysv_ipc`` ``send``/``receive`` on one queue), so one
run shows how close the channel comes to the bare facility:

    python -m ringipc bench --only 'unixgram*,sysvmq*' --sizes 64,1K --scenarios throughput,latency

UDP rows run the round trip only: UDP has no flow control, so a producer
that outruns its consumer loses datagrams, which the bench (rightly) counts
as a failed run.
"""
import random
import socket
from typing import Any, Callable, Dict, Tuple

from ringipc.bench.adapters.base import Channel, Facility
from ringipc.bench.adapters.peers import _have
from ringipc.bench.adapters.ringipc_transports import Transport
from ringipc.bench.adapters.streams import _SNDBUF_SLACK, packet_receiver



class UnixgramChannel(Transport):
    """``ringipc.connect("unixgram://PATH")``: message mode, send_bytes / recv_bytes."""

    name = "unixgram.ringipc"

    def __init__(self) -> None:
        super().__init__("unixgram")


class UnixgramSocket(Facility):
    """The reference: a connected pair of UNIX datagram sockets, one send and
    one recv_into a scratch map per message (as the seqpacket reference)."""

    name = "unixgram.socket"
    copies_on_send = True

    def _pair(self, size: int) -> Any:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF_SLACK + 2 * size)
        return a, b

    def supports(self, size: int, producers: int = 1, consumers: int = 1) -> Tuple[bool, str]:
        a, b = self._pair(size)
        try:
            a.setblocking(False)
            a.send(bytes(size))
        except OSError as exc:
            return False, f"{size} B does not fit one datagram ({exc.strerror})"
        finally:
            a.close()
            b.close()
        return super().supports(size, producers, consumers)

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        a, b = self._pair(size)

        def close() -> None:
            a.close()
            b.close()

        return Channel([a], [b], close)

    def open_sender(self, end: Any, size: int) -> Callable[[Any], Any]:
        return end.send

    def open_receiver(self, end: Any, size: int) -> Callable[[], Any]:
        return packet_receiver(end, size)


def _msgmax() -> int:
    try:
        with open("/proc/sys/kernel/msgmax") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 8192


class SysvMqChannel(Transport):
    """``ringipc.connect("sysvmq://KEY")``: one queue, one message type per direction."""

    name = "sysvmq.ringipc"

    def __init__(self) -> None:
        super().__init__("sysvmq")

    def _address(self) -> str:
        return f"sysvmq://{random.randrange(1 << 24, 1 << 30)}"

    def _options(self, size: int) -> Dict[str, Any]:
        return {"max_message_size": size + 1}  # control messages are one byte longer than any data

    def supports(self, size: int, producers: int = 1, consumers: int = 1) -> Tuple[bool, str]:
        try:
            from ringipc.channels.transports.sysvmq import check_limits

            check_limits(size + 1)
        except ImportError as exc:
            return False, str(exc)
        except OSError as exc:
            return False, str(exc)
        return Facility.supports(self, size, producers, consumers)


class SysvMqDirect(Facility):
    """The reference: ``sysv_ipc.MessageQueue`` send / receive on one queue and one type."""

    name = "sysvmq.sysv_ipc"
    copies_on_send = True
    mpmc = True

    def available(self) -> Tuple[bool, str]:
        return _have("sysv_ipc", "ringipc's own dependency")

    def supports(self, size: int, producers: int = 1, consumers: int = 1) -> Tuple[bool, str]:
        if size > _msgmax():
            return False, f"{size} B is over kernel.msgmax ({_msgmax()} B)"
        return super().supports(size, producers, consumers)

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        import sysv_ipc

        while True:
            try:
                q = sysv_ipc.MessageQueue(random.randrange(1 << 24, 1 << 30), sysv_ipc.IPC_CREX,
                                          mode=0o600, max_message_size=size)
                break
            except sysv_ipc.ExistentialError:
                continue

        def close() -> None:
            q.remove()

        return Channel([q.key] * producers, [q.key] * consumers, close)

    def open_sender(self, key: Any, size: int) -> Callable[[Any], Any]:
        import sysv_ipc

        send = sysv_ipc.MessageQueue(key, max_message_size=size).send
        return lambda msg: send(msg, True, 1)

    def open_receiver(self, key: Any, size: int) -> Callable[[], Any]:
        import sysv_ipc

        receive = sysv_ipc.MessageQueue(key, max_message_size=size).receive
        return lambda: receive(True, 1)[0]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UdpChannel(Transport):
    """``ringipc.connect("udp://127.0.0.1:PORT")``, unsigned (bytes only)."""

    name = "udp.ringipc"
    scenarios = ("latency",)

    def __init__(self) -> None:
        super().__init__("udp")

    def _address(self) -> str:
        return f"udp://127.0.0.1:{_free_udp_port()}"


class UdpSocket(UnixgramSocket):
    """The reference: a connected pair of UDP sockets on loopback."""

    name = "udp.socket"
    scenarios = ("latency",)

    def _pair(self, size: int) -> Any:
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        a.connect(b.getsockname())
        b.connect(a.getsockname())
        return a, b


FACILITIES = [UnixgramChannel(), UnixgramSocket(), SysvMqChannel(), SysvMqDirect(), UdpChannel(), UdpSocket()]
