# cython: language_level=3
"""Test hooks: drive a ring into states that only a crash produces, and tell
tests where header fields lie so they can corrupt them on purpose.

Every C call goes through the Ring type's own methods (declared in
_ring.pxd), so this module links no ring code of its own.
"""
from libc.stdint cimport uint32_t, uint64_t

cimport ringipc._cring as c
from ringipc._ring cimport Ring


def layout(Ring ring):
    """Byte offsets of header fields and sections, taken from the C structs
    (tests poke corrupt values through them; nothing else may hard-code one)."""
    ring._check_open()
    cdef char *base = <char *>ring._r.hdr
    return {
        "magic": 0,
        "abi_version": <char *>&ring._r.hdr.abi_version - base,
        "kind": <char *>&ring._r.hdr.kind - base,
        "ncells": <char *>&ring._r.hdr.ncells - base,
        "head": <char *>&ring._r.hdr.head - base,
        "cons": <char *>&ring._r.hdr.cons - base,
        "release": <char *>&ring._r.hdr.release - base,
        "slots": <char *>ring._r.slots - base,
        "slot_stride": sizeof(c.rip_slot),
        "slot_pid": <char *>&ring._r.slots[0].pid - <char *>&ring._r.slots[0],
        "slot_data_sleepers": <char *>&ring._r.slots[0].data_sleepers - <char *>&ring._r.slots[0],
        "slot_space_sleepers": <char *>&ring._r.slots[0].space_sleepers - <char *>&ring._r.slots[0],
        "meta": <char *>ring._r.meta - base,
        "meta_stride": sizeof(c.rip_meta),
        "meta_length": <char *>&ring._r.meta[0].length - <char *>&ring._r.meta[0],
        "data": <char *>ring._r.data - base,
        "cell": c.RIP_CELL,
        "segment_size": ring._view.len,
    }


def claim_and_hold(Ring ring, length, fill=b"\xee"):
    """Claim space for a `length`-byte message, write half of it, and return
    without committing: the state a producer killed mid-write leaves."""
    cdef c.rip_desc d
    cdef uint64_t i
    ring._write_begin(length, &d, False, None)
    ring._unlock_handle()  # the claim stays open; the handle stays usable
    for i in range(d.length // 2):
        d.data[i] = fill[0]
    return d.length


def read_and_hold(Ring ring):
    """Claim the next message without finishing the read: the state a
    consumer killed mid-copy leaves.  Returns the message length."""
    cdef c.rip_desc d
    ring._read_begin(&d, False, None)
    ring._unlock_handle()
    return d.length


def sleepers(Ring ring):
    """Who is counted asleep: the header's waiter counts (what notify() looks
    at) and, per slot holding any, (pid, data sleepers, space sleepers)."""
    ring._check_open()
    cdef int i
    slots = []
    for i in range(c.RIP_MAX_SLOTS):
        if ring._r.slots[i].data_sleepers or ring._r.slots[i].space_sleepers:
            slots.append((ring._r.slots[i].pid, ring._r.slots[i].data_sleepers, ring._r.slots[i].space_sleepers))
    return {
        "data": <uint32_t>ring._r.hdr.data_waiters,
        "space": <uint32_t>ring._r.hdr.space_waiters,
        "slots": slots,
    }
