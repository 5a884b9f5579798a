/*
 * What the topic's csrc files share and call of each other; not part of the
 * API for Cython (csrc/topic.h).
 *
 * The files are layers, lowest first, interleaved with the ring's (csrc/
 * ring_internal.h, tests/test_layering.py C_LAYERS); a file calls functions
 * of lower layers only:
 *   3  topic_layout.c     sizes, format, validation, attach, fork generation
 *      topic_wake.c       waking sleepers, recounting dead ones
 *      topic_bell.c       doorbells: install, ring, forget (arm: topic_wait.c)
 *   4  topic_slots.c      handle slots, closing, recovery of dead processes
 *      topic_lock.c       records as the publisher lock's holder sees them
 *                         (the lock itself is inline, below)
 *   6  topic_publish.c    write begin/commit/abort
 *      topic_subscribe.c  joining, with history
 *      topic_read.c       read begin/end, the seqlock check
 *   7  topic_wait.c       sleeping until a topic changes
 * Sleeping and waking go through the ring's wait backend (csrc/ring_backend.c:
 * futex, or POSIX semaphores), and RINGIPC_CHAOS builds pause at the topic's
 * CHAOS_POINT()s as at the ring's.
 */
#ifndef RINGIPC_TOPIC_INTERNAL_H
#define RINGIPC_TOPIC_INTERNAL_H

#include "ring_internal.h" /* wait backend, chaos points, liveness, cells_for_length */
#include "topic.h"

_Static_assert(TP_CELL == RIP_CELL && TP_CELL_SHIFT == RIP_CELL_SHIFT, "topics size records as rings do");

#define TP_SLOTS_BYTES ((uint64_t)TP_MAX_SLOTS * sizeof(struct tp_slot))
#define TP_ROLE_IDLE 3u /* a slot held by a subscriber that has not joined yet */

static inline uint64_t tp_meta_bytes(uint64_t ncells)
{
    uint64_t m = ncells * sizeof(struct tp_meta);
    return (m + TP_PAGE - 1) & ~(uint64_t)(TP_PAGE - 1);
}

static inline struct tp_meta *tp_meta_at(const tp_handle *h, uint64_t pos) { return &h->meta[pos & h->mask]; }

static inline int tp_owner_is_live_word(uint64_t owner) { return owner != 0 && owner != TP_OWNER_RELEASING; }

static inline uint32_t tp_slot_limit(tp_handle *h)
{
    uint32_t hint = a_load(&h->hdr->slot_hint, ACQ);
    return hint > TP_MAX_SLOTS ? TP_MAX_SLOTS : hint;
}

static inline _Atomic uint64_t *tp_waiters_word(tp_handle *h, int which)
{
    return which == TP_WAIT_DATA ? &h->hdr->data_waiters
         : which == TP_WAIT_SPACE ? &h->hdr->space_waiters : &h->hdr->lock_waiters;
}

static inline _Atomic uint32_t *tp_futex_word(tp_handle *h, int which)
{
    return which == TP_WAIT_DATA ? &h->hdr->data_futex
         : which == TP_WAIT_SPACE ? &h->hdr->space_futex : &h->hdr->lock_futex;
}

static inline sem_t *tp_sem(tp_handle *h, int which)
{
    return which == TP_WAIT_DATA ? &h->hdr->data_sem : which == TP_WAIT_SPACE ? &h->hdr->space_sem : &h->hdr->lock_sem;
}

/* -- layer 3: topic_wake.c --------------------------------------------------- */
/* Wakes the sleepers of `which` if one armed the word (see topic_wake.c). */
void tp_wake(tp_handle *h, int which);
/* Lowers each waiter count to the sleepers of live slots. */
void tp_recount(tp_handle *h);

/* -- layer 3: topic_bell.c ----------------------------------------------------- */
/* Rings every armed data (writers=0) or space (writers=1) bell. */
void tp_ring_bells(tp_handle *h, int writers);
/* Slot `index` changes hands: its bells and armed bits go. */
void tp_bell_forget(tp_handle *h, uint32_t index);
/* The watcher's first step of an arm; -1 without a slot of this process. */
int tp_bell_set_armed(tp_handle *h, int writer);

/*
 * The publisher lock: an owner word, CAS 0 -> the holder's pid and start
 * time (taken back by tp_recover if the holder dies).  Inline: every publish
 * takes and gives it once.
 */
static inline int tp_try_lock(tp_handle *h)
{
    uint64_t expected = 0;
    /* L1 (acquire): pairs with the previous holder's release of the lock, so
     * its head, tail and records are visible. */
    return a_cas(&h->hdr->pub_owner, &expected, h->owner, ACQ, RLX);
}

static inline void tp_unlock(tp_handle *h, int published)
{
    struct tp_header *hdr = h->hdr;
    /* L2 (release): everything written under the lock. */
    a_store(&hdr->pub_owner, 0, REL);
    a_fence(SEQ_CST); /* F1: pairs with F2 in sleep_on(), csrc/topic_wait.c */
    if (published && TP_WAITERS_COUNT(a_load(&hdr->data_waiters, RLX)))
        tp_wake(h, TP_WAIT_DATA);
    if (published && unlikely(a_load(&hdr->data_bells_armed, RLX)))
        tp_ring_bells(h, 0);
    if (TP_WAITERS_COUNT(a_load(&hdr->lock_waiters, RLX)))
        tp_wake(h, TP_WAIT_LOCK);
    /* Publishers watching their bells wait for the lock or for space alike. */
    if (unlikely(a_load(&hdr->space_bells_armed, RLX)))
        tp_ring_bells(h, 1);
}

/* -- layer 4: topic_slots.c, topic_lock.c ------------------------------------- */
int tp_take_slot(tp_handle *h, uint32_t role);
/* The record at `p` as the lock holder sees it: cells, committed or padding, seq. */
tp_status tp_record_at(tp_handle *h, uint64_t p, uint64_t head, uint64_t *cells, int *committed, uint64_t *seq);
/* Lowest position of a live subscriber, clamped to [tail, head]; head if none. */
uint64_t tp_scan_min(tp_handle *h, uint64_t tail, uint64_t head);

#endif
