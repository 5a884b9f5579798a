"""ringipc's exceptions.

Every ringipc-specific exception derives from :class:`RingError` *and* from the
standard-library class a user of pipes, sockets and ``multiprocessing`` already
catches, so ``except ValueError`` or ``except OSError`` keeps working.
Queue-like timeouts raise the standard :class:`queue.Empty` / :class:`queue.Full`
themselves, as ``multiprocessing`` does.
"""
import multiprocessing


class RingError(Exception):
    """Base class of every ringipc-specific exception."""


class CorruptSegment(RingError, ValueError):
    """A shared-memory segment is foreign, truncated, of another ABI version, or
    holds a value that breaks the ring's invariants.  Nothing was read out of it."""


class MessageTooLarge(RingError, ValueError):
    """A message can never fit into the channel (it exceeds its maximum message size)."""


class ChannelClosed(RingError, ValueError):
    """An operation was attempted on a handle that was closed in this process."""


class BufferTooShort(RingError, multiprocessing.BufferTooShort):
    """The buffer given to ``recv_bytes_into`` is smaller than the message.

    As with ``multiprocessing``, the message has been consumed: it is in ``args[0]``."""


class PeerDied(RingError, ConnectionResetError):
    """The process at the other end died in a way that cannot be recovered from."""


class SharedMemoryUnavailable(RingError, OSError):
    """Shared memory cannot be created: ``/dev/shm`` is missing, too small, or not writable."""


class AuthenticationError(RingError, multiprocessing.AuthenticationError):
    """A network peer failed the authkey challenge; nothing it sent was unpickled."""


class FrameError(RingError, ValueError):
    """A frame read from a transport is malformed (for example, announces a length over the limit)."""


class AddressError(RingError, ValueError):
    """A channel address cannot be used as given: unknown scheme, malformed,
    a UNIX socket path over the kernel's limit, or a network bind without an authkey."""


class ResourceLimitError(RingError, OSError):
    """A kernel limit stops the request (for example a POSIX message-queue limit);
    the message names the limit and how to raise it."""


class FallbackWarning(RuntimeWarning):
    """ringipc fell back from shared memory to another transport."""


__all__ = [
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
