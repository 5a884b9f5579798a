/*
 * Handing space back and waking sleepers: the two steps every layer above
 * (the data path in ring.c and ring_batch.c, recovery in ring_recover.c) ends
 * with.  Below recovery, so that recovery can free what a dead process held
 * without calling up into the data path.
 */
#include "ring_internal.h"

int rip_advance_release(rip_ring *ring)
{
    struct rip_header *hdr = ring->hdr;
    int moved = 0;
    uint64_t rel = a_load(&hdr->release, ACQ);
    /* Bounded: each pass moves release over at least one cell or follows
     * another process's move of it; a CONSUMED tag is current for one
     * position per meta entry, so a chain of them ends within ncells cells. */
    for (uint64_t pass = 0; pass <= ring->ncells; pass++) {
        struct rip_meta *meta = meta_at(ring, rel);
        uint64_t tag = RIP_TAG(rel, RIP_STATE_CONSUMED);
        /* A3: pairs with R2: the reader finished copying before we free its cells. */
        if (a_load(&meta->tag, ACQ) != tag)
            return moved;
        CHAOS_POINT();
        uint64_t cells = cells_for_length(a_load(&meta->length, ACQ)); /* V2: see confirm_stable() */
        if (unlikely(cells > ring->ncells)) {
            /* Stable (release unchanged after V2: the cells were not freed
             * and reused meanwhile) means corrupt.  Release stays where it
             * is; producers report it. */
            uint64_t now = a_load(&hdr->release, RLX);
            if (now == rel)
                return -1;
            rel = now;
            continue;
        }
        CHAOS_POINT();
        /* R4: carries A3's happens-before on to producers (A1). */
        if (a_cas(&hdr->release, &rel, rel + cells, REL, ACQ)) {
            rel += cells;
            moved = 1;
        }
    }
    return moved;
}

/*
 * Out of line: keeps notify()'s fast path a fence, a load and a branch.
 *
 * One wake system call per sleep, not per notify.  With sleepers counted,
 * every commit (or release) used to bump the futex and call FUTEX_WAKE until
 * the woken sleepers had unregistered - on a loaded machine, for
 * milliseconds, hundreds of system calls that found nobody, each slowing the
 * side that was making progress.  A sleeper now also raises `wanted` (after
 * reading the futex word it will sleep on), and only the notifier that takes
 * it back to 0 wakes.  Why no wake-up is lost: a sleeper S does
 *     waiters++ ; v = futex ; wanted = 1 ; F2 ; check ; sleep(futex == v)
 * (all seq_cst) and a notifier N does
 *     change ; F1 ; n = waiters ; if (n && wanted && xchg(wanted, 0)) { futex++ ; wake }
 *  - N saw S's registration, or F2 came after F1 and S's check sees the
 *    change (the Dekker pair of csrc/ring_wait.c).
 *  - N's xchg took S's 1: the xchg follows S's load of v in the total order,
 *    so N's futex++ does too, and S fails FUTEX_WAIT's compare or is woken.
 *  - S's store of 1 came after N's xchg (or N read 0 before it): then F1
 *    precedes F2 and S's check sees N's change; the 1 stays for the next
 *    notifier, which at worst wakes once more than needed.
 *  - Another notifier N' took S's 1 (whatever N saw): N' wakes S as above.
 */
__attribute__((noinline, cold)) static void wake(rip_ring *ring, _Atomic uint32_t *futex, sem_t *sem,
                                                 _Atomic uint32_t *wanted, uint64_t seen_waiters, uint32_t n,
                                                 int writers)
{
    /* Relaxed look first: spares an RMW of the shared line while the
     * sleepers woken last time are still on their way out. */
    if (a_load(wanted, RLX) == 0 || a_exchange(wanted, 0, SEQ_CST) == 0) {
        rip_after_skipped_wake(ring, writers, seen_waiters);
        return;
    }
    a_fetch_add(futex, 1, SEQ_CST);
    rip_after_wake(ring, writers, rip_backend_wake(futex, sem, n));
}

static inline void notify(rip_ring *ring, _Atomic uint32_t *futex, _Atomic uint64_t *waiters, sem_t *sem,
                          _Atomic uint32_t *bells, _Atomic uint32_t *wanted, int writers)
{
    /* F1: orders our commit/release before the waiter-count load; pairs with
     * F2 in rip_wait_* and rip_bell_arm: either we see the waiter (or armed
     * bell), or it sees our change. */
    a_fence(SEQ_CST);
    uint64_t w = a_load(waiters, RLX);
    uint32_t n = RIP_WAITERS_COUNT(w); /* the sequence half only tells the skipped-wake heuristic of changes */
    /* Armed doorbells: one relaxed load of the line just loaded. */
    uint32_t armed = a_load(bells, RLX);
    if (likely((n | armed) == 0))
        return;
    if (n)
        wake(ring, futex, sem, wanted, w, n, writers);
    if (armed)
        rip_ring_bells(ring, writers);
}

void rip_notify_readers(rip_ring *ring)
{
    struct rip_header *hdr = ring->hdr;
    notify(ring, &hdr->data_futex, &hdr->data_waiters, &hdr->data_sem, &hdr->data_bells_armed, &hdr->data_wake_wanted, 0);
}

void rip_notify_writers(rip_ring *ring)
{
    struct rip_header *hdr = ring->hdr;
    notify(ring, &hdr->space_futex, &hdr->space_waiters, &hdr->space_sem, &hdr->space_bells_armed, &hdr->space_wake_wanted, 1);
}
