"""ringipc: fast inter-process communication over a lock-free shared-memory ring.

This module only re-exports; each name lives in the module that defines it.
"""
from .core._ring import Ring
from .channels.address import connect, listen, register_scheme
from .channels.bytestream import ByteStream
from .channels.channel import Channel, Listener
from .mp.connection import Connection, Pipe
from .mp.context import get_context
from .mp.executor import ProcessPoolExecutor
from .mp.install import install, uninstall
from .errors import (
    AddressError,
    AuthenticationError,
    BufferTooShort,
    ChannelClosed,
    CorruptSegment,
    FallbackWarning,
    FrameError,
    MessageTooLarge,
    PeerDied,
    ResourceLimitError,
    RingError,
    SharedMemoryUnavailable,
)
from .mp.lease import Lease, LeaseReleased
from .mp.queues import JoinableQueue, Queue
from .mp.simplequeue import SimpleQueue
from .mp.waiting import wait
from .core.stream import RingStream, stream_pair
from .channels.transports.pipe import pipe_pair
from .topic import MessageOverwritten, Publisher, Subscriber, Topic

__version__ = "0.1.0"

__all__ = [
    # the core
    "Ring",
    # multiprocessing drop-ins
    "Queue",
    "JoinableQueue",
    "SimpleQueue",
    "Pipe",
    "Connection",
    "Lease",
    "LeaseReleased",
    "wait",
    "get_context",
    "ProcessPoolExecutor",
    "install",
    "uninstall",
    # one Channel API over every transport
    "Channel",
    "Listener",
    "ByteStream",
    "RingStream",
    "stream_pair",
    "connect",
    "listen",
    "register_scheme",
    "pipe_pair",
    # broadcast topics
    "Topic",
    "Publisher",
    "Subscriber",
    "MessageOverwritten",
    # exceptions
    "RingError",
    "CorruptSegment",
    "MessageTooLarge",
    "ChannelClosed",
    "BufferTooShort",
    "PeerDied",
    "SharedMemoryUnavailable",
    "AuthenticationError",
    "FrameError",
    "AddressError",
    "ResourceLimitError",
    "FallbackWarning",
]
