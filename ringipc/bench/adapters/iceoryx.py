"""iceoryx2 publish/subscribe (zero-copy shared memory, Rust core) as a peer.

iceoryx2's subscriber is polled: the consumer spins on ``receive()`` instead of
sleeping, which is how iceoryx2 is used for lowest latency and costs a core.
Publishers retry until delivered (no overwriting of unread samples), so the
comparison is with lossless queues.
"""
import ctypes
import time
import uuid
from typing import Any, Callable, Tuple

from ringipc.bench.adapters.base import Channel, Facility

_PATIENCE = 20.0  # seconds to wait for the service and the peer port to appear


class Iceoryx2(Facility):
    name = "iceoryx2"
    depth = 64  # samples a subscriber may hold unread
    history = 0  # samples a late subscriber receives on connecting

    def available(self) -> Tuple[bool, str]:
        try:
            import iceoryx2  # noqa: F401
        except ImportError as exc:
            return False, f"iceoryx2 not installed (ringipc[bench]): {exc}"
        return True, ""

    def setup(self, size: int, producers: int = 1, consumers: int = 1) -> Channel:
        name = f"ringipc-bench-{uuid.uuid4().hex[:12]}"
        # Created here, before the children start, so that they only ever open it:
        # no two processes race to create one service with its overflow settings.
        # (The parent's node stays out of self, which is pickled to the children.)
        held = [self._service(name, _new_node())]
        return Channel([name], [name], held.clear)

    def _service(self, name: str, node: Any = None) -> Any:
        import iceoryx2 as iox2

        if node is None:
            node = self.__dict__.get("_node") or self.__dict__.setdefault("_node", _new_node())
        deadline = time.monotonic() + _PATIENCE
        while True:
            try:
                # Every process asks for identical settings, so opening checks them too.
                return (
                    node.service_builder(iox2.ServiceName.new(name))
                    .publish_subscribe(iox2.Slice[ctypes.c_uint8])
                    .enable_safe_overflow(False)
                    .subscriber_max_buffer_size(self.depth)
                    .history_size(self.history)
                    .open_or_create()
                )
            except Exception:
                # Another process may be half-way through opening or removing it.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def open_sender(self, name: str, size: int) -> Callable[[Any], Any]:
        import iceoryx2 as iox2

        service = self._service(name)
        pub = (
            service.publisher_builder()
            .initial_max_slice_len(size)
            .allocation_strategy(iox2.AllocationStrategy.PowerOfTwo)
            .backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered)
            .create()
        )
        self.__dict__.setdefault("_waiting", []).append((service, pub))
        memmove = ctypes.memmove

        def send(msg: Any) -> None:
            n = len(msg)
            sample = pub.loan_slice_uninit(n)
            memmove(sample.payload_ptr, msg, n)
            sample.assume_init().send()

        return send

    def open_receiver(self, name: str, size: int) -> Callable[[], Any]:
        service = self._service(name)
        sub = service.subscriber_builder().buffer_size(self.depth).create()
        self.__dict__.setdefault("_ports", []).append(sub)
        receive = sub.receive

        def recv() -> Any:
            while True:
                sample = receive()
                if sample is not None:
                    break
            data = bytes(sample.payload().as_memory_view())
            sample.delete()  # hand the slot back now, not when garbage collected
            return data

        return recv

    def connected(self) -> None:
        # A sample published before the subscriber exists reaches nobody: wait for it.
        deadline = time.monotonic() + _PATIENCE
        for service, pub in self.__dict__.get("_waiting", []):
            while service.dynamic_config.number_of_subscribers < 1:
                if time.monotonic() > deadline:
                    raise TimeoutError("no iceoryx2 subscriber appeared")
                time.sleep(0.001)
            pub.update_connections()


def _new_node() -> Any:
    import iceoryx2 as iox2

    iox2.set_log_level_from_env_or(iox2.LogLevel.Error)  # no "default config" notice per process
    return iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)


FACILITIES = [Iceoryx2()]
