"""ringipc: fast inter-process communication over a lock-free shared-memory ring.

This module only re-exports; each name lives in the module that defines it.
"""
from ._ring import Ring
from .address import connect, listen, register_scheme
from .bytestream import ByteStream
from .channel import Channel, Listener
from .connection import Connection, Pipe, wait
from .context import get_context
from .install import install, uninstall
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
from .queues import JoinableQueue, Queue, SimpleQueue
from .ring_stream import RingStream, stream_pair
from .topic import MessageOverwritten, Publisher, Subscriber, Topic
from .transports.pipe import pipe_pair

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
    "wait",
    "get_context",
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
