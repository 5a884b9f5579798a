/*
 * Producer-side space accounting shared by single writes (csrc/ring.c) and
 * batches (csrc/ring_batch.c): where a record goes, whether it fits, and
 * the checks every claim starts with.  Not part of the C API.
 */
#ifndef RINGIPC_RING_CLAIM_H
#define RINGIPC_RING_CLAIM_H

#include "ring_internal.h"

static inline uint64_t padding_before(const rip_ring *ring, uint64_t head, uint64_t cells)
{
    uint64_t offset = head & ring->mask;
    /* A record never wraps: it would need two copies.  Pad to the end instead. */
    return offset + cells > ring->ncells ? ring->ncells - offset : 0;
}

/* Loads release and checks it against a head loaded *before* it. */
static inline rip_status fresh_release(rip_ring *ring, uint64_t head_seen, uint64_t *release)
{
    /* A1: pairs with R3 (SPSC) / R4 (MPMC): the consumer's copy out of the
     * freed cells happens-before this producer writes into them. */
    uint64_t rel = a_load(&ring->hdr->release, ACQ);
    if (rel > head_seen) {
        /* head only grows, so a head loaded now must be >= this release */
        if (rel > a_load(&ring->hdr->head, RLX))
            return RIP_CORRUPT;
        return RIP_EMPTY; /* our head was stale; caller reloads it */
    }
    if (head_seen - rel > ring->ncells)
        return RIP_CORRUPT;
    ring->cached_release = rel;
    *release = rel;
    return RIP_OK;
}

/* Whether `need` cells from `head` fit below release + ncells.  RIP_OK: they
 * fit (ring->cached_release is fresh enough to show it); RIP_FULL: not now;
 * RIP_EMPTY: `head` was stale, reload it; RIP_CORRUPT.  Repeats only after
 * release moved, so it ends. */
static inline rip_status check_room(rip_ring *ring, uint64_t head, uint64_t need)
{
    uint64_t rel;
    rip_status st;
    if (likely(head + need - ring->cached_release <= ring->ncells))
        return RIP_OK;
    for (;;) {
        if ((st = fresh_release(ring, head, &rel)) != RIP_OK)
            return st;
        if (head + need - rel <= ring->ncells)
            return RIP_OK;
        if (!ring->multi)
            return RIP_FULL;
        /* A consumer may have died between marking a record consumed and
         * moving release past it: help before reporting full. */
        int advanced = rip_advance_release(ring);
        if (advanced < 0)
            return RIP_CORRUPT;
        if (advanced == 0)
            return RIP_FULL;
    }
}

/* A failed CAS may have left our intent pointing at another producer's claim;
 * a stale intent of a live process would stop recovery of that claim. */
static inline rip_status give_up_claiming(rip_ring *ring, rip_status st)
{
    if (ring->multi)
        a_store(&ring->slot->produce_intent, 0, RLX);
    return st;
}

/* The checks before a claim: this process holds the producer role or an
 * MPMC slot (again after fork), and the reading side is open. */
static inline rip_status ready_to_claim(rip_ring *ring)
{
    rip_status st;
    if (unlikely(ring->fork_generation != rip_fork_generation ||
                 !(ring->multi ? ring->slot != NULL : ring->is_producer))) {
        if ((st = rip_ensure_role(ring, 1)) != RIP_OK)
            return st;
    }
    /* Relaxed: the flag needs only eventual visibility; a send racing a close
     * may land, exactly as a write racing close() on a pipe. */
    if (unlikely(a_load(&ring->hdr->flags, RLX) & RIP_FLAG_READER_CLOSED))
        return RIP_CLOSED;
    return RIP_OK;
}

#endif
