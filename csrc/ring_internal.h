/*
 * What the csrc files share and call of each other; not part of the C API.
 *
 * The files are layers, lowest first; a file calls functions of lower layers
 * only (and of ring.h, the API for Cython, by the same rule), so the call graph
 * has no circle.  tests/test_layering.py checks it.
 *   1  ring_liveness.c, ring_chaos.c    is a process alive; chaos pauses
 *      bell.c                           the doorbell mechanism rings and topics share
 *   2  ring_backend.c, ring_waiters.c   futex/semaphore primitives; who is counted asleep;
 *      ring_bell.c                      doorbells: readiness as a file descriptor
 *   3  ring_release.c                   handing space back, waking sleepers
 *   4  ring_recover.c                   dead processes' claims
 *   5  ring_segment.c                   create, validate, attach; roles and slots
 *   6  ring.c, ring_batch.c             the data path: claim, commit, read
 *   7  ring_wait.c                      sleeping until the ring changes
 */
#ifndef RINGIPC_RING_INTERNAL_H
#define RINGIPC_RING_INTERNAL_H

#include "atomics.h"
#include "ring.h"

/*
 * RINGIPC_CHAOS=1 builds (setup.py) stop for a moment between the steps of
 * the claim/commit/read/release protocol: sometimes yielding the CPU,
 * sometimes spinning a little, chosen by a per-thread random stream.  Rare
 * interleavings - a record reused between a reader's two loads, a claim
 * preempted before its commit - then happen every few thousand messages, so
 * the stress tests reach them.  Normal builds compile the points to nothing.
 */
#if defined(RINGIPC_CHAOS)
void rip_chaos_point(void);
/* A chaos point before a batch's index-th tag, where a test can also have
 * the process stop itself (rip_chaos_stop_at_batch_tag). */
void rip_chaos_batch_tag(size_t index);
#define CHAOS_POINT() rip_chaos_point()
#define CHAOS_BATCH_TAG(index) rip_chaos_batch_tag(index)
#else
#define CHAOS_POINT() ((void)0)
#define CHAOS_BATCH_TAG(index) ((void)0)
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* A zero-length message still occupies one cell: its tag and length need a
 * home.  Written so that no length read from shared memory can wrap the sum
 * (2^64 - 1 must give 2^58 cells, not 0: a zero-cell record would never let
 * release advance). */
static inline uint64_t cells_for_length(uint64_t length)
{
    return length == 0 ? 1 : (length >> RIP_CELL_SHIFT) + ((length & (RIP_CELL - 1)) != 0);
}

static inline struct rip_meta *meta_at(const rip_ring *ring, uint64_t pos)
{
    return &ring->meta[pos & ring->mask];
}

/* True when `tag` is a live tag of the record starting at `pos` (any state). */
static inline int tag_is_current(uint64_t tag, uint64_t pos)
{
    return (tag >> 2) == pos && (tag & 3u) != 0;
}

/* -- layer 1: ring_liveness.c -------------------------------------------- */
/* This process's owner word, and whether the process an owner word names
 * still runs. */
uint64_t rip_self_owner(void);
int rip_owner_alive(uint64_t owner);

/* -- layer 1: bell.c (doorbells of rings and topics alike) ---------------- */
/* Takes every armed bit of `words` (nwords x 64 slots) and sends one datagram
 * to each taken slot's bell; the names are 64-bit words `stride` bytes apart
 * from `first_name` (slot 0's).  `count` is the armed count notifiers load. */
void rip_bells_ring(_Atomic uint64_t *words, uint32_t nwords, _Atomic uint32_t *count,
                    _Atomic uint64_t *first_name, size_t stride);
/* The watcher's first step of an arm: its bit and the count (seq_cst). */
void rip_bells_set(_Atomic uint64_t *words, _Atomic uint32_t *count, uint32_t index);
/* Takes back an armed bit that has not rung. */
void rip_bells_clear(_Atomic uint64_t *words, _Atomic uint32_t *count, uint32_t index);

/* -- layer 2: ring_backend.c, ring_waiters.c ------------------------------- */
int rip_backend_init(sem_t *sem);
rip_status rip_backend_wait(_Atomic uint32_t *word, sem_t *sem, uint32_t expected,
                            const struct timespec *deadline);
/* Whether an absolute CLOCK_MONOTONIC deadline (NULL: none) has passed. */
int rip_deadline_passed(const struct timespec *deadline);
/* Returns 0 when the wake-up evidently found nobody asleep. */
int rip_backend_wake(_Atomic uint32_t *word, sem_t *sem, uint32_t waiters);
/* Counting a sleeper in its slot and the header. */
void rip_sleeper_register(rip_ring *ring, struct rip_slot *slot, int writer);
void rip_sleeper_unregister(rip_ring *ring, struct rip_slot *slot, int writer);
/* notify()'s slow path: recounts after enough wake-ups that found nobody. */
void rip_after_wake(rip_ring *ring, int writers, int someone_woke);
/* ... and when sleepers were counted (`waiters`, the header word) but none
 * was waiting to be woken: recounts when the word stays the same. */
void rip_after_skipped_wake(rip_ring *ring, int writers, uint64_t waiters);
/* notify()'s other slow path: rings every armed doorbell of one direction. */
void rip_ring_bells(rip_ring *ring, int writers);
/* A slot changes hands: its bells and armed bits go. */
void rip_bell_forget(rip_ring *ring, struct rip_slot *slot);
/* The watcher's first step of an arm (its check follows in rip_bell_arm);
 * -1 without a slot of this process. */
int rip_bell_set_armed(rip_ring *ring, int writer);

/* -- layer 3: ring_release.c (and rip_notify_* in ring.h) ------------------ */
/* 1 if release moved, 0 if not, -1 if the record at release is corrupt. */
int rip_advance_release(rip_ring *ring);

/* -- layer 5: ring_segment.c ----------------------------------------------- */
/* Takes the SPSC role or the MPMC slot this process needs (again after fork). */
rip_status rip_ensure_role(rip_ring *ring, int producer);

#endif
