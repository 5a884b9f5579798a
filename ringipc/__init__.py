"""ringipc: fast inter-process communication over a lock-free shared-memory ring."""
from ._ring import Ring
from .errors import (
    AuthenticationError,
    BufferTooShort,
    ChannelClosed,
    CorruptSegment,
    FallbackWarning,
    FrameError,
    MessageTooLarge,
    PeerDied,
    RingError,
    SharedMemoryUnavailable,
)

__version__ = "0.1.0"

__all__ = [
    "Ring",
    "RingError",
    "CorruptSegment",
    "MessageTooLarge",
    "ChannelClosed",
    "BufferTooShort",
    "PeerDied",
    "SharedMemoryUnavailable",
    "AuthenticationError",
    "FrameError",
    "FallbackWarning",
]
