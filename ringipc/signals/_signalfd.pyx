# cython: language_level=3
"""sigqueue(3) and signalfd(2): the two calls the standard library lacks for
signals that carry data (Python's signal module can wait for a signal, but
neither send a value with one nor read the value back)."""
from libc.errno cimport errno
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcpy
from posix.types cimport pid_t

cdef extern from "<signal.h>" nogil:
    ctypedef struct sigset_t:
        pass
    union sigval:
        int sival_int
        void *sival_ptr
    int sigqueue(pid_t pid, int sig, const sigval value)
    int sigemptyset(sigset_t *set)
    int sigaddset(sigset_t *set, int signum)

cdef extern from "<sys/signalfd.h>" nogil:
    struct signalfd_siginfo:
        uint32_t ssi_signo
        int32_t ssi_errno
        int32_t ssi_code
        uint32_t ssi_pid
        uint32_t ssi_uid
        int32_t ssi_int
        uint64_t ssi_ptr
    int signalfd(int fd, const sigset_t *mask, int flags)
    enum:
        SFD_CLOEXEC
        SFD_NONBLOCK

SIGINFO_SIZE = sizeof(signalfd_siginfo)


def send(int pid, int signum, int64_t value):
    """Queue `signum` with `value` (64 bits, in sival_ptr) for process `pid`."""
    cdef sigval v
    v.sival_ptr = <void *><size_t>value
    if sigqueue(pid, signum, v) != 0:
        raise OSError(errno, __import__("os").strerror(errno))


def open_fd(signums):
    """A non-blocking signalfd for `signums` (which the caller has blocked)."""
    cdef sigset_t mask
    sigemptyset(&mask)
    for signum in signums:
        if sigaddset(&mask, signum) != 0:
            raise ValueError(f"invalid signal number {signum}")
    fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)
    if fd < 0:
        raise OSError(errno, __import__("os").strerror(errno))
    return fd


def parse(const unsigned char[:] record):
    """(signum, sender pid, sender uid, si_code, value) from one signalfd record."""
    cdef signalfd_siginfo info
    if record.shape[0] != sizeof(signalfd_siginfo):
        raise ValueError(f"a signalfd record is {sizeof(signalfd_siginfo)} bytes, not {record.shape[0]}")
    memcpy(&info, &record[0], sizeof(signalfd_siginfo))
    return info.ssi_signo, info.ssi_pid, info.ssi_uid, info.ssi_code, <int64_t>info.ssi_ptr
