/*
 * Who is counted as asleep, and taking back the count of a process that died
 * asleep.
 *
 * notify() makes a wake system call whenever the header's waiter count is
 * non-zero.  A sleeper registers in that count before sleeping and leaves it
 * after; if it is SIGKILLed in between, its registration would stay forever
 * and every later commit or release by every peer would pay a system call.
 *
 * Each sleeping thread is therefore counted twice: in its handle's slot
 * (data_sleepers / space_sleepers, written only by the slot's owner) and in
 * the header word notify() loads.  A sleeper does
 *     (1) slot count++   (2) header count++   ... sleep ...
 *     (3) header count-- (4) slot count--
 * A recount reads the header word h, sums the slot counts of slots whose owner
 * is alive into s, and CASes h -> min(count(h), s) with the sequence bumped.
 *
 * Why this never uncounts a live sleeper (which would lose its wake-up):
 * every live registration included in h has its slot increment visible to
 * the recount (W1: (1) is sequenced before the release RMW (2), and the
 * recount's acquire load of h synchronises with it through the RMW release
 * sequence), unless that thread has since done (3) - and then h has changed
 * and the CAS fails (W2: (4) is a release store, so a recount that sees it
 * lowered also has (3) ordered before its CAS).  So s and count(h) are both
 * at least the number of live registrations in h, and the recount only ever
 * lowers the count.  The sequence in the high half makes the CAS fail even if
 * other sleepers came and went and left the count where it was.
 *
 * Why every kill point is handled: a dead owner's slot adds 0 to s whatever
 * its counts say.  Killed before (1) or after (4): counted nowhere.  Killed
 * between (1) and (2), or between (3) and (4): its slot says 1, the header
 * does not include it, and since the slot is ignored nothing is subtracted
 * that was never added.  Killed between (2) and (3): the header holds its 1
 * and the next recount drops it.  No step subtracts one particular process's
 * share, so nothing can be taken back twice: two recounters are ordered by
 * their CASes, and a recount over unchanged data finds nothing to lower.  The
 * count cannot underflow: it stays at least the number of live registrations,
 * and each live sleeper decrements only its own.
 *
 * A recount is cheap but not free (it asks the kernel about each slot whose
 * owner is counted asleep), so it runs only on slow paths: rip_recover(), a
 * takeover of a dead process's role or slot, and a handle whose wake-ups have
 * found nobody RIP_RECOUNT_AFTER_IDLE_WAKES times in a row - the sign that
 * the count includes someone who is not there.  A dead sleeper is woken at
 * most once (csrc/ring_release.c: only a sleeper that raised the wake-wanted
 * word since the last wake-up is woken), so notifies that find sleepers
 * counted but none wanting a wake-up lead to a recount too - after
 * RIP_RECOUNT_AFTER_SKIPPED_WAKES of them with the waiter word unchanged: a
 * live sleeper woken a moment ago changes it when it unregisters, a dead one
 * never does.
 */
#include "ring_internal.h"

void rip_sleeper_register(rip_ring *ring, struct rip_slot *slot, int writer)
{
    struct rip_header *hdr = ring->hdr;
    /* (1) Relaxed: published by the release half of (2) (W1). */
    a_fetch_add(writer ? &slot->space_sleepers : &slot->data_sleepers, 1, RLX);
    /* (2) seq_cst: also the waiter's first step of the F1/F2 Dekker pair. */
    a_fetch_add(writer ? &hdr->space_waiters : &hdr->data_waiters, RIP_WAITERS_REGISTER, SEQ_CST);
}

void rip_sleeper_unregister(rip_ring *ring, struct rip_slot *slot, int writer)
{
    struct rip_header *hdr = ring->hdr;
    /* (3) */
    a_fetch_add(writer ? &hdr->space_waiters : &hdr->data_waiters, RIP_WAITERS_UNREGISTER, SEQ_CST);
    /* (4) W2: release, so a recount that sees this has (3) before its CAS. */
    a_fetch_sub(writer ? &slot->space_sleepers : &slot->data_sleepers, 1, REL);
}

/* Lowers the count in *word from count(seen) to live, if *word still equals seen. */
static void lower_count(_Atomic uint64_t *word, uint64_t seen, uint64_t live)
{
    if (live >= RIP_WAITERS_COUNT(seen))
        return;
    uint64_t want = ((seen >> 32) + 1) << 32 | live;
    /* Failure means a sleeper came or went meanwhile: the next recount retries. */
    a_cas(word, &seen, want, ACQ_REL, RLX);
}

void rip_recount_sleepers(rip_ring *ring)
{
    struct rip_header *hdr = ring->hdr;
    /* Acquire (W1): every registration included here has its slot count visible below. */
    uint64_t data = a_load(&hdr->data_waiters, ACQ);
    uint64_t space = a_load(&hdr->space_waiters, ACQ);
    uint64_t live_data = 0, live_space = 0;
    if (RIP_WAITERS_COUNT(data) == 0 && RIP_WAITERS_COUNT(space) == 0)
        return;
    for (uint32_t i = 0; i < RIP_MAX_SLOTS; i++) {
        struct rip_slot *slot = &ring->slots[i];
        uint64_t owner = a_load(&slot->owner, ACQ);
        if (owner == 0)
            continue;
        /* Acquire (W2): a count seen lowered has its header decrement before our CAS. */
        uint32_t d = a_load(&slot->data_sleepers, ACQ);
        uint32_t s = a_load(&slot->space_sleepers, ACQ);
        /* An owner that merely looks alive (no /proc to tell its start time
         * by) keeps its count: an over-count only costs wake calls, an
         * under-count loses one.  A pid now held by another process does not. */
        if ((d | s) == 0 || !rip_owner_alive(owner))
            continue;
        live_data += d; /* 64-bit sums: no garbage in 128 slots can wrap them */
        live_space += s;
    }
    lower_count(&hdr->data_waiters, data, live_data);
    lower_count(&hdr->space_waiters, space, live_space);
}

void rip_after_wake(rip_ring *ring, int writers, int someone_woke)
{
    _Atomic uint32_t *idle = &ring->idle_wakes[writers ? 1 : 0];
    /* Relaxed: a per-handle heuristic; threads of one handle may race on it. */
    if (someone_woke) {
        a_store(idle, 0, RLX);
        return;
    }
    if (a_fetch_add(idle, 1, RLX) + 1 < RIP_RECOUNT_AFTER_IDLE_WAKES)
        return;
    a_store(idle, 0, RLX);
    rip_recount_sleepers(ring);
}

void rip_after_skipped_wake(rip_ring *ring, int writers, uint64_t waiters)
{
    int i = writers ? 1 : 0;
    /* Relaxed: a per-handle heuristic, as in rip_after_wake. */
    if (a_load(&ring->skipped_seen[i], RLX) != waiters) {
        /* Someone registered or left since: this notify starts a new run. */
        a_store(&ring->skipped_seen[i], waiters, RLX);
        a_store(&ring->skipped_wakes[i], 1, RLX);
        return;
    }
    if (a_fetch_add(&ring->skipped_wakes[i], 1, RLX) + 1 < RIP_RECOUNT_AFTER_SKIPPED_WAKES)
        return;
    a_store(&ring->skipped_wakes[i], 0, RLX);
    rip_recount_sleepers(ring);
}
