/*
 * Releasing what dead processes left claimed in an MPMC ring.
 *
 * A producer that dies between its claim (C1) and its commit (P1) leaves a
 * record whose tag stays stale: readers stop at it.  A consumer that dies
 * between its claim (C2) and read_end leaves a committed record that is never
 * marked consumed: release stops at it and the ring fills.  Every claim is
 * preceded by the claimer's intent (position + 1) in its slot, so a recoverer
 * can name the owner of a stuck position and ask the kernel whether it lives
 * (by pid and start time, csrc/ring_liveness.c: a pid handed on to another
 * process after the claimer died does not keep the claim alive).
 *
 * A stuck position is released only when every slot whose intent points into
 * the stuck range belongs to a dead process, and at least one does.  This is
 * safe because a live producer's intent always lies in the range while any
 * record of its claim there is unpublished: a single write's intent names
 * its claim until the commit; a batch's moves from record to record, always
 * to the next record before the tag of the one before it is stored (csrc/
 * ring_batch.c), so it never falls behind the first unpublished one.  (A
 * recoverer that reads an intent newer than a tag it read finds that tag
 * already published when its CAS comes.)  A live owner - merely preempted
 * or stopped - is always waited for:
 * its claim stalls readers at that record and nothing else (producers keep
 * claiming and committing behind it).
 *
 * Recovery is a slow path run by waiters that have slept a while.  One
 * process recovers at a time (recovery_owner, taken over if its holder died),
 * so two recoverers never pad the same range with different lengths.
 * Committed messages are never dropped; a message claimed by a consumer that
 * died is gone with that consumer, as with a pipe.
 *
 * rip_recover also recounts sleepers (csrc/ring_waiters.c), in both kinds of
 * ring: a process killed while asleep leaves a registration, not a claim.
 */
#include "ring_internal.h"

enum intent_kind { PRODUCE, CONSUME };

/* 1 if some dead process has an unfinished claim in [first, end) and no live
 * process has one (see the argument at the top). */
static int owners_all_dead(rip_ring *ring, uint64_t first, uint64_t end, enum intent_kind kind)
{
    int found_dead_owner = 0;
    for (uint32_t i = 0; i < RIP_MAX_SLOTS; i++) {
        struct rip_slot *slot = &ring->slots[i];
        uint64_t owner = a_load(&slot->owner, ACQ);
        if (owner == 0)
            continue;
        /* Acquire (pairs with I1/I2): an intent seen moved on or cleared
         * comes with the tags published before it, so the CAS that would
         * pad or consume one of those fails.  Intents set before a claim are
         * visible through our acquire load of head/cons (C1/C2). */
        uint64_t intent = a_load(kind == PRODUCE ? &slot->produce_intent : &slot->consume_intent, ACQ);
        if (intent == 0 || intent - 1 < first || intent - 1 >= end)
            continue;
        if (rip_owner_alive(owner))
            return 0;
        found_dead_owner = 1;
    }
    return found_dead_owner;
}

/* The first position after `pos` where a record's tag is current, or head. */
static uint64_t next_record_start(rip_ring *ring, uint64_t pos, uint64_t head)
{
    for (uint64_t p = pos + 1; p < head; p++) {
        if (tag_is_current(a_load(&meta_at(ring, p)->tag, ACQ), p))
            return p;
    }
    return head;
}

/* A stale tag at cons: pad over the dead producers' unfinished claims. */
static int recover_dead_producer(rip_ring *ring)
{
    uint64_t pos = a_load(&ring->hdr->cons, ACQ);
    uint64_t head = a_load(&ring->hdr->head, ACQ); /* pairs with C1: intents visible */
    if (pos >= head || head - pos > ring->ncells)
        return 0; /* nothing claimed, or positions too corrupt to act on */
    struct rip_meta *meta = meta_at(ring, pos);
    uint64_t tag = a_load(&meta->tag, ACQ);
    if (tag_is_current(tag, pos))
        return 0;
    uint64_t end = next_record_start(ring, pos, head);
    if (!owners_all_dead(ring, pos, end, PRODUCE))
        return 0;
    CHAOS_POINT(); /* a late commit by a process we judged dead would fail the CAS below */
    /* V1, as in commit; published to readers by the tag CAS (P1-like release). */
    a_store(&meta->length, (end - pos) << RIP_CELL_SHIFT, REL);
    if (!a_cas(&meta->tag, &tag, RIP_TAG(pos, RIP_STATE_PADDING), REL, RLX))
        return 0;
    rip_notify_readers(ring);
    return 1;
}

/* A record at release that was claimed but never finished by its reader. */
static int recover_dead_consumer(rip_ring *ring)
{
    uint64_t rel = a_load(&ring->hdr->release, ACQ);
    uint64_t cons = a_load(&ring->hdr->cons, ACQ); /* pairs with C2: intents visible */
    int recovered = 0;
    if (rel >= cons || cons - rel > ring->ncells)
        return 0;
    struct rip_meta *meta = meta_at(ring, rel);
    uint64_t tag = a_load(&meta->tag, ACQ);
    /* Padding below cons was skipped by a reader that may have died before
     * marking it; marking it again is idempotent. */
    if (tag == RIP_TAG(rel, RIP_STATE_PADDING) ||
        (tag == RIP_TAG(rel, RIP_STATE_COMMITTED) && owners_all_dead(ring, rel, rel + 1, CONSUME))) {
        recovered = a_cas(&meta->tag, &tag, RIP_TAG(rel, RIP_STATE_CONSUMED), REL, RLX) &&
                    tag == RIP_TAG(rel, RIP_STATE_COMMITTED);
    }
    if (rip_advance_release(ring) > 0)
        rip_notify_writers(ring);
    return recovered;
}

/* rip_recover calls running in this process, in the low 32 bits, tagged
 * with the fork generation they were counted in (high bits): a child starts
 * from none without a fork handler, since calls counted in the parent carry
 * an older generation. */
static _Atomic uint64_t recoveries_here;

static void count_recovery(int delta)
{
    uint64_t seen = a_load(&recoveries_here, RLX), next;
    do {
        uint64_t running = (seen >> 32) == (uint32_t)rip_fork_generation ? (uint32_t)seen : 0;
        next = ((uint64_t)(uint32_t)rip_fork_generation << 32) | (uint32_t)(running + (uint64_t)delta);
    } while (!a_cas(&recoveries_here, &seen, next, ACQ_REL, RLX));
}

/* Tests stand in for a recovery running on another thread of this process. */
void rip_debug_count_recovery(int delta) { count_recovery(delta); }

static int recoveries_running_here(void)
{
    uint64_t seen = a_load(&recoveries_here, ACQ);
    return (seen >> 32) == (uint32_t)rip_fork_generation ? (int)(uint32_t)seen : 0;
}

static int take_recovery(rip_ring *ring, uint64_t me)
{
    _Atomic uint64_t *owner = &ring->hdr->recovery_owner;
    uint64_t current = a_load(owner, ACQ);
    /* Our own owner word means another thread or handle of this process is
     * recovering right now (rip_recover always releases before returning,
     * and the word names this process, not a predecessor): one at a time.
     * Unless no other call of ours is running (the caller counted itself):
     * then the word is stale - a corrupt segment naming us - and waiting for
     * it would disable recovery for good.  A word naming another live
     * process is waited for: that process may be frozen inside recovery, and
     * taking over from it could let its late length store land on a reused
     * record; a corrupt word of that kind lasts until that process exits. */
    if (current == me && recoveries_running_here() > 1)
        return 0;
    if (current != 0 && current != me && rip_owner_alive(current))
        return 0;
    return a_cas(owner, &current, me, ACQ_REL, RLX);
}

rip_status rip_recover(rip_ring *ring, uint32_t *recovered)
{
    *recovered = 0;
    rip_recount_sleepers(ring); /* both kinds: any process may have died asleep */
    if (!ring->multi)
        return RIP_OK; /* SPSC publishes with one store: a dead peer leaves nothing half-done */
    /* Not ring->owner: a handle inherited over fork() that has not been used
     * in the child yet still holds its parent's word. */
    uint64_t me = rip_self_owner();
    count_recovery(+1);
    if (!take_recovery(ring, me)) {
        count_recovery(-1);
        return RIP_OK;
    }
    /* Bounded: each step moves cons or release forward over at least one cell. */
    for (uint64_t step = 0; step < 2 * ring->ncells; step++) {
        int progress = recover_dead_producer(ring);
        progress += recover_dead_consumer(ring);
        if (!progress)
            break;
        *recovered += (uint32_t)progress;
    }
    a_cas(&ring->hdr->recovery_owner, &me, 0, REL, RLX);
    count_recovery(-1);
    return RIP_OK;
}
