# cython: language_level=3
"""Read-only snapshots of ringipc segments, for ``python -m ringipc ls``.

Works on a read-only mapping, so it cannot change what it looks at, and
checks every field before using it (a corrupt or half-created segment is
reported as such, never read out of bounds).  Values are loaded one by one
while the owners keep working: a snapshot is a consistent view of nothing in
particular, good for watching, not for deciding.
"""
from libc.stdint cimport int32_t, uint32_t, uint64_t

cdef extern from *:
    """
    #include <stddef.h>
    #include "ring_layout.h"
    #include "sync.h"
    #include "topic.h"
    static const size_t ripi_tp_abi = offsetof(struct tp_header, abi_version);
    static const size_t ripi_tp_policy = offsetof(struct tp_header, policy);
    static const size_t ripi_tp_ncells = offsetof(struct tp_header, ncells);
    static const size_t ripi_tp_segment_size = offsetof(struct tp_header, segment_size);
    static const size_t ripi_tp_slots_offset = offsetof(struct tp_header, slots_offset);
    static const size_t ripi_tp_creator = offsetof(struct tp_header, creator_pid);
    static const size_t ripi_tp_head = offsetof(struct tp_header, head);
    static const size_t ripi_tp_tail = offsetof(struct tp_header, tail);
    static const size_t ripi_tp_next_seq = offsetof(struct tp_header, next_seq);
    static const size_t ripi_tp_pub_owner = offsetof(struct tp_header, pub_owner);
    static const size_t ripi_tp_slot_size = sizeof(struct tp_slot);
    static const size_t ripi_tp_slot_owner = offsetof(struct tp_slot, owner);
    static const size_t ripi_tp_slot_pos = offsetof(struct tp_slot, pos);
    static const size_t ripi_tp_slot_role = offsetof(struct tp_slot, role);
    /* Relaxed atomic loads of words another process is changing. */
    #define RIPI_LOAD64(p) __atomic_load_n((const uint64_t *)(p), __ATOMIC_RELAXED)
    #define RIPI_LOAD32(p) __atomic_load_n((const uint32_t *)(p), __ATOMIC_RELAXED)
    static const size_t ripi_head = offsetof(struct rip_header, head);
    static const size_t ripi_cons = offsetof(struct rip_header, cons);
    static const size_t ripi_release = offsetof(struct rip_header, release);
    static const size_t ripi_flags = offsetof(struct rip_header, flags);
    static const size_t ripi_data_waiters = offsetof(struct rip_header, data_waiters);
    static const size_t ripi_space_waiters = offsetof(struct rip_header, space_waiters);
    static const size_t ripi_spsc_producer = offsetof(struct rip_header, spsc_producer);
    static const size_t ripi_spsc_consumer = offsetof(struct rip_header, spsc_consumer);
    static const size_t ripi_abi = offsetof(struct rip_header, abi_version);
    static const size_t ripi_kind = offsetof(struct rip_header, kind);
    static const size_t ripi_ncells = offsetof(struct rip_header, ncells);
    static const size_t ripi_segment_size = offsetof(struct rip_header, segment_size);
    static const size_t ripi_meta_offset = offsetof(struct rip_header, meta_offset);
    static const size_t ripi_data_offset = offsetof(struct rip_header, data_offset);
    static const size_t ripi_creator = offsetof(struct rip_header, creator_pid);
    static const size_t ripi_slot_size = sizeof(struct rip_slot);
    static const size_t ripi_slot_owner = offsetof(struct rip_slot, owner);
    static const size_t ripi_slot_produce = offsetof(struct rip_slot, produce_intent);
    static const size_t ripi_slot_consume = offsetof(struct rip_slot, consume_intent);
    static const size_t ripi_slot_data_sleepers = offsetof(struct rip_slot, data_sleepers);
    static const size_t ripi_slot_space_sleepers = offsetof(struct rip_slot, space_sleepers);
    static const size_t ripi_meta_size = sizeof(struct rip_meta);
    static const size_t ripi_sync_kind = offsetof(struct rip_sync, kind);
    static const size_t ripi_sync_abi = offsetof(struct rip_sync, abi_version);
    static const size_t ripi_sync_creator = offsetof(struct rip_sync, creator_pid);
    static const size_t ripi_sync_max = offsetof(struct rip_sync, max_value);
    static const size_t ripi_sync_word = offsetof(struct rip_sync, word);
    static const size_t ripi_sync_size = sizeof(struct rip_sync);
    """
    uint64_t RIPI_LOAD64(const void *p) nogil
    uint32_t RIPI_LOAD32(const void *p) nogil
    const size_t ripi_head, ripi_cons, ripi_release, ripi_flags, ripi_data_waiters, ripi_space_waiters
    const size_t ripi_spsc_producer, ripi_spsc_consumer, ripi_abi, ripi_kind, ripi_ncells, ripi_segment_size
    const size_t ripi_meta_offset, ripi_data_offset, ripi_creator, ripi_slot_size, ripi_slot_owner
    const size_t ripi_slot_produce, ripi_slot_consume, ripi_slot_data_sleepers, ripi_slot_space_sleepers
    const size_t ripi_meta_size, ripi_sync_kind, ripi_sync_abi, ripi_sync_creator, ripi_sync_max, ripi_sync_word
    const size_t ripi_sync_size
    const size_t ripi_tp_abi, ripi_tp_policy, ripi_tp_ncells, ripi_tp_segment_size, ripi_tp_slots_offset
    const size_t ripi_tp_creator, ripi_tp_head, ripi_tp_tail, ripi_tp_next_seq, ripi_tp_pub_owner
    const size_t ripi_tp_slot_size, ripi_tp_slot_owner, ripi_tp_slot_pos, ripi_tp_slot_role
    enum:
        RIP_MAGIC, RIP_ABI_VERSION, RIP_HEADER_SIZE, RIP_MAX_SLOTS, RIP_CELL, RIP_KIND_SPSC, RIP_KIND_MPMC
        RIP_MIN_CELLS, RIP_MAX_CELLS, RIP_FLAG_WRITER_CLOSED, RIP_FLAG_READER_CLOSED, RIP_STATE_COMMITTED
        RIP_SYNC_MAGIC, RIP_SYNC_ABI_VERSION, RIP_SYNC_LOCK, RIP_SYNC_SEMAPHORE, RIP_SYNC_EVENT
        RIP_SYNC_VALUE_MASK, RIP_SYNC_CONTENDED
        TP_MAGIC, TP_ABI_VERSION, TP_MAX_SLOTS, TP_MIN_CELLS, TP_MAX_CELLS, TP_CELL, TP_LOSSLESS, TP_DROP_OLDEST
        TP_LATEST, TP_ROLE_SUBSCRIBER, TP_ROLE_PUBLISHER, TP_OWNER_RELEASING

# Records walked at most when counting the messages waiting (a snapshot of a
# huge ring stays cheap; the count is then a lower bound, marked so).
MAX_WALK = 100_000


class NotRecognised(ValueError):
    """Not a ringipc segment, or one whose header does not validate."""


cdef inline uint64_t _u64(const unsigned char *p, size_t off) noexcept:
    return RIPI_LOAD64(p + off)


cdef inline uint32_t _u32(const unsigned char *p, size_t off) noexcept:
    return RIPI_LOAD32(p + off)


def _owner(uint64_t word):
    return (word & 0xFFFFFFFF, word >> 32) if word else None


def snapshot(const unsigned char[:] seg):
    """A dict describing the ring, topic or primitive in `seg` (a read-only
    buffer of the whole segment); NotRecognised if it is none of them."""
    cdef Py_ssize_t size = seg.shape[0]
    if size < 8:
        raise NotRecognised("shorter than any header")
    cdef const unsigned char *p = &seg[0]
    cdef uint64_t magic = _u64(p, 0)
    if magic == RIP_MAGIC:
        return _ring(p, size)
    if magic == RIP_SYNC_MAGIC:
        return _primitive(p, size)
    if magic == TP_MAGIC:
        return _topic(p, size)
    raise NotRecognised("not a ringipc ring or primitive (bad magic; half-created?)")


cdef dict _ring(const unsigned char *p, Py_ssize_t size):
    cdef uint64_t ncells, head, cons, release, pos, length, tag, steps = 0, waiting = 0
    cdef uint32_t kind
    if <size_t>size < RIP_HEADER_SIZE:
        raise NotRecognised("ring header truncated")
    if _u32(p, ripi_abi) != RIP_ABI_VERSION:
        raise NotRecognised(f"ring of another ringipc version (ABI {_u32(p, ripi_abi)})")
    ncells = _u64(p, ripi_ncells)
    kind = _u32(p, ripi_kind)
    if (ncells < RIP_MIN_CELLS or ncells > RIP_MAX_CELLS or (ncells & (ncells - 1)) != 0
            or kind not in (RIP_KIND_SPSC, RIP_KIND_MPMC) or _u64(p, ripi_segment_size) != <uint64_t>size
            or _u64(p, ripi_data_offset) + ncells * RIP_CELL != <uint64_t>size
            or _u64(p, ripi_meta_offset) + ncells * ripi_meta_size > _u64(p, ripi_data_offset)):
        raise NotRecognised("ring header does not validate")
    release = _u64(p, ripi_release)
    cons = _u64(p, ripi_cons)
    head = _u64(p, ripi_head)
    cdef const unsigned char *meta = p + _u64(p, ripi_meta_offset)
    if release <= cons <= head and head - release <= ncells:
        # Count committed records from cons to head: every step lands on a
        # record start (its length, checked, says where the next one is).
        pos = cons
        while pos < head and steps < MAX_WALK:
            tag = RIPI_LOAD64(meta + (pos & (ncells - 1)) * ripi_meta_size)
            length = RIPI_LOAD64(meta + (pos & (ncells - 1)) * ripi_meta_size + 8)
            if (tag >> 2) != pos or length > ncells * RIP_CELL:
                break  # unpublished (a claim in progress) or changing under us
            if (tag & 3) == RIP_STATE_COMMITTED:
                waiting += 1
            pos += 1 if length == 0 else (length + RIP_CELL - 1) // RIP_CELL
            steps += 1
    slots = []
    cdef const unsigned char *slot
    cdef size_t i
    for i in range(RIP_MAX_SLOTS):
        slot = p + RIP_HEADER_SIZE + i * ripi_slot_size
        owner = _owner(_u64(slot, ripi_slot_owner))
        if owner is None:
            continue
        slots.append({"pid": owner[0], "start": owner[1],
                      "in_send": _u64(slot, ripi_slot_produce) != 0, "in_recv": _u64(slot, ripi_slot_consume) != 0,
                      "asleep_reading": _u32(slot, ripi_slot_data_sleepers),
                      "asleep_writing": _u32(slot, ripi_slot_space_sleepers)})
    flags = _u32(p, ripi_flags)
    return {
        "type": "ring", "kind": "mpmc" if kind == RIP_KIND_MPMC else "spsc",
        "capacity": ncells * RIP_CELL, "creator_pid": <int32_t>_u32(p, ripi_creator),
        "head": head, "cons": cons, "release": release,
        "used_bytes": min(head - release, ncells) * RIP_CELL if head >= release else None,
        "bytes_in": head * RIP_CELL, "bytes_out": cons * RIP_CELL,
        "messages_waiting": waiting, "messages_waiting_exact": pos == head if head >= cons else False,
        "writer_closed": bool(flags & RIP_FLAG_WRITER_CLOSED), "reader_closed": bool(flags & RIP_FLAG_READER_CLOSED),
        "readers_asleep": _u64(p, ripi_data_waiters) & 0xFFFFFFFF,
        "writers_asleep": _u64(p, ripi_space_waiters) & 0xFFFFFFFF,
        "spsc_producer": _owner(_u64(p, ripi_spsc_producer)), "spsc_consumer": _owner(_u64(p, ripi_spsc_consumer)),
        "slots": slots,
    }


cdef dict _primitive(const unsigned char *p, Py_ssize_t size):
    if <size_t>size < ripi_sync_size or _u32(p, ripi_sync_abi) != RIP_SYNC_ABI_VERSION:
        raise NotRecognised("primitive header truncated or of another version")
    cdef uint32_t kind = _u32(p, ripi_sync_kind), word = _u32(p, ripi_sync_word)
    cdef uint32_t value = word & RIP_SYNC_VALUE_MASK
    out = {"type": "primitive", "creator_pid": <int32_t>_u32(p, ripi_sync_creator),
           "contended": bool(word & RIP_SYNC_CONTENDED)}
    if kind == RIP_SYNC_LOCK:
        out.update(kind="lock", holder_pid=value or None)
    elif kind == RIP_SYNC_SEMAPHORE:
        out.update(kind="semaphore", value=value, bound=_u32(p, ripi_sync_max))
    elif kind == RIP_SYNC_EVENT:
        out.update(kind="event", set=bool(value & 1))
    else:
        raise NotRecognised("primitive of an unknown kind")
    return out


_TOPIC_POLICIES = {TP_LOSSLESS: "lossless", TP_DROP_OLDEST: "drop-oldest", TP_LATEST: "latest"}


cdef dict _topic(const unsigned char *p, Py_ssize_t size):
    cdef uint64_t ncells, head, tail, slots_offset, owner, pos
    cdef uint32_t role
    cdef size_t i
    cdef const unsigned char *slot
    if <size_t>size < 4096 or _u32(p, ripi_tp_abi) != TP_ABI_VERSION:
        raise NotRecognised("topic header truncated or of another version")
    ncells = _u64(p, ripi_tp_ncells)
    slots_offset = _u64(p, ripi_tp_slots_offset)
    policy = _TOPIC_POLICIES.get(_u32(p, ripi_tp_policy))
    if (policy is None or ncells < TP_MIN_CELLS or ncells > TP_MAX_CELLS or (ncells & (ncells - 1)) != 0
            or _u64(p, ripi_tp_segment_size) != <uint64_t>size
            or slots_offset < 4096 or slots_offset + TP_MAX_SLOTS * ripi_tp_slot_size > <uint64_t>size):
        raise NotRecognised("topic header does not validate")
    head = _u64(p, ripi_tp_head)
    tail = _u64(p, ripi_tp_tail)
    subscribers, publishers = [], []
    for i in range(TP_MAX_SLOTS):
        slot = p + slots_offset + i * ripi_tp_slot_size
        owner = _u64(slot, ripi_tp_slot_owner)
        if owner == 0 or owner == TP_OWNER_RELEASING:
            continue
        role = _u32(slot, ripi_tp_slot_role)
        pos = _u64(slot, ripi_tp_slot_pos)
        entry = {"pid": owner & 0xFFFFFFFF, "start": owner >> 32}
        if role == TP_ROLE_SUBSCRIBER:
            # Behind by this many bytes of records (0 if it reads past a torn
            # snapshot).  Only lossless topics keep subscriber positions in the
            # segment (their publishers wait for them); the others do not.
            entry["behind_bytes"] = None if policy != "lossless" else (head - pos) * TP_CELL if pos <= head else 0
            subscribers.append(entry)
        elif role == TP_ROLE_PUBLISHER:
            publishers.append(entry)
    return {
        "type": "topic", "kind": policy, "capacity": ncells * TP_CELL,
        "creator_pid": <int32_t>_u32(p, ripi_tp_creator),
        "published": _u64(p, ripi_tp_next_seq), "bytes_in": head * TP_CELL,
        "retained_bytes": min(head - tail, ncells) * TP_CELL if head >= tail else None,
        "publishing_pid": (_u64(p, ripi_tp_pub_owner) & 0xFFFFFFFF) or None,
        "subscribers": subscribers, "publishers": publishers,
    }
