# Part of ringipc/core/_ring.pyx (included there, compiled as one module):
# test hooks.  They drive a ring into states that only a crash produces, and
# tell tests where header fields lie so they can corrupt them on purpose.
# Reached through Ring._debug_*().


cdef extern from *:
    # GCC/Clang builtins: the owner words are _Atomic in C, plain here.
    uint64_t __atomic_load_n(uint64_t *ptr, int order) nogil
    void __atomic_store_n(uint64_t *ptr, uint64_t value, int order) nogil
    int __ATOMIC_SEQ_CST

cdef extern from *:
    # Fields _cring.pxd does not declare, because only corrupting tests need
    # them: their offsets straight from the C structs, never from a Python guess.
    """
    #include <stddef.h>
    #include "ring_layout.h"
    static const size_t ripth_flags = offsetof(struct rip_header, flags);
    static const size_t ripth_data_futex = offsetof(struct rip_header, data_futex);
    static const size_t ripth_space_futex = offsetof(struct rip_header, space_futex);
    static const size_t ripth_data_waiters = offsetof(struct rip_header, data_waiters);
    static const size_t ripth_space_waiters = offsetof(struct rip_header, space_waiters);
    static const size_t ripth_produce_intent = offsetof(struct rip_slot, produce_intent);
    static const size_t ripth_consume_intent = offsetof(struct rip_slot, consume_intent);
    static const size_t ripth_meta_tag = offsetof(struct rip_meta, tag);
    """
    const size_t ripth_flags, ripth_data_futex, ripth_space_futex, ripth_data_waiters, ripth_space_waiters
    const size_t ripth_produce_intent, ripth_consume_intent, ripth_meta_tag
    enum:
        RIP_STATE_COMMITTED
        RIP_STATE_PADDING
        RIP_STATE_CONSUMED


def _hook_layout(Ring ring):
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
        "spsc_producer": <char *>&ring._r.hdr.spsc_producer - base,
        "spsc_consumer": <char *>&ring._r.hdr.spsc_consumer - base,
        "recovery_owner": <char *>&ring._r.hdr.recovery_owner - base,
        "cons": <char *>&ring._r.hdr.cons - base,
        "release": <char *>&ring._r.hdr.release - base,
        "flags": ripth_flags,
        "data_futex": ripth_data_futex,
        "space_futex": ripth_space_futex,
        "data_waiters": ripth_data_waiters,
        "space_waiters": ripth_space_waiters,
        "slots": <char *>ring._r.slots - base,
        "slot_stride": sizeof(c.rip_slot),
        "slot_owner": <char *>&ring._r.slots[0].owner - <char *>&ring._r.slots[0],
        "slot_produce_intent": ripth_produce_intent,
        "slot_consume_intent": ripth_consume_intent,
        "slot_data_sleepers": <char *>&ring._r.slots[0].data_sleepers - <char *>&ring._r.slots[0],
        "slot_space_sleepers": <char *>&ring._r.slots[0].space_sleepers - <char *>&ring._r.slots[0],
        "meta": <char *>ring._r.meta - base,
        "meta_stride": sizeof(c.rip_meta),
        "meta_tag": ripth_meta_tag,
        "meta_length": <char *>&ring._r.meta[0].length - <char *>&ring._r.meta[0],
        "data": <char *>ring._r.data - base,
        "cell": c.RIP_CELL,
        # record tags are (position << 2) | state
        "states": {"committed": RIP_STATE_COMMITTED, "padding": RIP_STATE_PADDING, "consumed": RIP_STATE_CONSUMED},
        "segment_size": ring._view.len,
    }


def _hook_claim_and_hold(Ring ring, length, fill=b"\xee"):
    """Claim space for a `length`-byte message, write half of it, and return
    without committing: the state a producer killed mid-write leaves."""
    cdef c.rip_desc d
    cdef uint64_t i
    ring._write_begin(length, &d, False, None)
    ring._unlock_handle()  # the claim stays open; the handle stays usable
    for i in range(d.length // 2):
        d.data[i] = fill[0]
    return d.length


def _hook_read_and_hold(Ring ring):
    """Claim the next message without finishing the read: the state a
    consumer killed mid-copy leaves.  Returns the message length."""
    cdef c.rip_desc d
    ring._read_begin(&d, False, None)
    ring._unlock_handle()
    return d.length


def _hook_sleepers(Ring ring):
    """Who is counted asleep: the header's waiter counts (what notify() looks
    at) and, per slot holding any, (pid, data sleepers, space sleepers)."""
    ring._check_open()
    cdef int i
    slots = []
    for i in range(c.RIP_MAX_SLOTS):
        if ring._r.slots[i].data_sleepers or ring._r.slots[i].space_sleepers:
            slots.append((c.RIP_OWNER_PID(ring._r.slots[i].owner), ring._r.slots[i].data_sleepers,
                          ring._r.slots[i].space_sleepers))
    return {
        "data": <uint32_t>ring._r.hdr.data_waiters,
        "space": <uint32_t>ring._r.hdr.space_waiters,
        "slots": slots,
        # Armed doorbells (csrc/ring_bell.c): what notify() loads beside the waiters.
        "data_bells": ring._r.hdr.data_bells_armed,
        "space_bells": ring._r.hdr.space_bells_armed,
    }


cdef uint64_t *_owner_word(Ring ring, where) except NULL:
    if where == "producer":
        return <uint64_t *>&ring._r.hdr.spsc_producer
    if where == "consumer":
        return <uint64_t *>&ring._r.hdr.spsc_consumer
    if where == "recovery":
        return <uint64_t *>&ring._r.hdr.recovery_owner
    if not 0 <= where < c.RIP_MAX_SLOTS:
        raise IndexError(where)
    return <uint64_t *>&ring._r.slots[<int>where].owner


def _hook_owners(Ring ring):
    """Who holds what, as (pid, start stamp) pairs: the SPSC roles, recovery
    and every taken slot by index (None where the word is 0)."""
    ring._check_open()
    cdef int i
    cdef uint64_t w

    def split(uint64_t word):
        return None if word == 0 else (c.RIP_OWNER_PID(word), c.RIP_OWNER_START(word))

    result = {where: split(__atomic_load_n(_owner_word(ring, where), __ATOMIC_SEQ_CST))
              for where in ("producer", "consumer", "recovery")}
    result["slots"] = {}
    for i in range(c.RIP_MAX_SLOTS):
        w = __atomic_load_n(_owner_word(ring, i), __ATOMIC_SEQ_CST)
        if w != 0:
            result["slots"][i] = split(w)
    return result


def _hook_set_owner(Ring ring, where, uint32_t pid, uint32_t start):
    """Overwrite an owner word ("producer", "consumer", "recovery" or a slot
    index) with (pid, start): what the segment says after the recorded pid
    has been handed on to another process, or a made-up holder."""
    ring._check_open()
    cdef uint64_t *word = _owner_word(ring, where)
    # One aligned 64-bit store, as the C side's CASes write the word.
    __atomic_store_n(word, c.RIP_OWNER(pid, start), __ATOMIC_SEQ_CST)


def _chaos_stop_at_batch_tag(long index):
    """A test hook of RINGIPC_CHAOS builds: this process's next batch write
    stops the process (SIGSTOP) just before storing its index-th tag, for a
    test to SIGKILL it there.  -1 disarms."""
    if not c.rip_chaos_stop_at_batch_tag(index):
        raise RuntimeError("only RINGIPC_CHAOS=1 builds stop inside a batch")
