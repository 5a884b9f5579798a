"""Writing raw values into a ring's segment, for tests that corrupt it on
purpose.  Every offset comes from ring._debug_layout() (ringipc/core/_ring_testhooks.pxi),
which takes it from the C structs: nothing here knows the layout itself."""
import mmap
import os
import struct

SHM = "/dev/shm/"


class Poke:
    """Writes raw values into a ring's segment through its own file."""

    def __init__(self, ring):
        self.layout = ring._debug_layout()
        self.fd = os.open(SHM + ring.name, os.O_RDWR)
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
