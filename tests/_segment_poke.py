"""Writing raw values into a ring's segment, for tests that corrupt it on
purpose.  Every offset comes from ring._debug_layout() (ringipc/core/_ring_testhooks.pxi),
which takes it from the C structs: nothing here knows the layout itself."""
import mmap
import os
import itertools
import pickle
import struct

from multiprocessing.reduction import ForkingPickler

SHM = "/dev/shm/"
_made = itertools.count()


def unique_name(tag="t"):
    """A ring name no other test (or test run) uses: for tests that need a
    named segment (attach by name, files in /dev/shm)."""
    # The pid first, as in the names ringipc makes up: the leak guard of any
    # other test run on the machine (tests/conftest.py) leaves it alone.
    return f"{os.getpid()}-{tag}-{next(_made)}"

def twin(obj):
    """Another handle of the same ring (topic, lock), as a child process
    would receive it: works for anonymous and named objects alike."""
    return pickle.loads(ForkingPickler.dumps(obj))


class Poke:
    """Writes raw values into a ring's segment through its own file."""

    def __init__(self, ring):
        self.layout = ring._debug_layout()
        self.fd = os.open(ring._debug_segment_path(), os.O_RDWR)
        self.map = mmap.mmap(self.fd, self.layout["segment_size"])

    def u32(self, offset, value):
        struct.pack_into("<I", self.map, offset, value)

    def u64(self, offset, value):
        struct.pack_into("<Q", self.map, offset, value)

    def get64(self, offset):
        return struct.unpack_from("<Q", self.map, offset)[0]

    def meta(self, cell):
        return self.layout["meta"] + cell * self.layout["meta_stride"]

    def slot(self, index):
        return self.layout["slots"] + index * self.layout["slot_stride"]

    def tag(self, position, state):
        """The tag of a record at `position` in `state` ("committed", ...)."""
        return ((position << 2) | self.layout["states"][state]) & (2**64 - 1)

    def close(self):
        self.map.close()
        os.close(self.fd)
