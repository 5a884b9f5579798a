/*
 * The data path: claim, commit, read, release.  One implementation serves
 * both kinds; `ring->multi` selects CAS claims (MPMC) or plain stores (SPSC)
 * and is constant for a ring, so the branch is perfectly predicted.
 *
 * Positions are free-running cell counts (never wrap in practice: 2^64 cells).
 * Invariant, checked wherever a position is read:
 *     release <= cons <= head <= release + ncells
 * [release, cons) holds records being read or read, [cons, head) records
 * claimed by producers (committed or not), [head, release + ncells) is free.
 *
 * Memory-order pairs (table in docs/design.md):
 *   P1 (commit, release store of tag)     -> A2 (read_begin, acquire load of tag)
 *   R2 (read_end, release store CONSUMED) -> A3 (advance_release, acquire load of tag)
 *   R3/R4 (release store / CAS of release) -> A1 (write_begin, acquire load of release)
 *   C1 (claim CAS, release) publishes the producer's intent -> recoverer's acquire load of head
 *   C2 (cons CAS, release) publishes the consumer's intent -> recoverer's acquire load of cons
 *   F1 (notify fence) <-> F2 (wait fence): Dekker pair against lost wake-ups
 */
#include <string.h>

#include "ring_claim.h"

/* As give_up_claiming, for a consumer's intent. */
static rip_status give_up_consuming(rip_ring *ring, rip_status st)
{
    if (ring->multi)
        a_store(&ring->slot->consume_intent, 0, RLX);
    return st;
}

rip_status rip_write_begin(rip_ring *ring, uint64_t length, rip_desc *desc)
{
    struct rip_header *hdr = ring->hdr;
    uint64_t cells, head, pad, need;
    rip_status st;

    if (unlikely(length > ring->max_message))
        return RIP_TOO_BIG;
    if (unlikely((st = ready_to_claim(ring)) != RIP_OK))
        return st;
    cells = cells_for_length(length);
    /* Relaxed: SPSC owns head; for MPMC a stale head only fails the CAS. */
    head = a_load(&hdr->head, RLX);
    for (;;) {
        pad = padding_before(ring, head, cells);
        need = pad + cells;
        st = check_room(ring, head, need);
        if (unlikely(st != RIP_OK)) {
            if (st == RIP_EMPTY) {
                head = a_load(&hdr->head, RLX);
                continue;
            }
            return give_up_claiming(ring, st);
        }
        if (!ring->multi)
            break; /* SPSC publishes head in commit, with the record */
        /* Relaxed: C1's release publishes it to any recoverer that sees our claim. */
        a_store(&ring->slot->produce_intent, head + 1, RLX);
        CHAOS_POINT();
        /* C1 */
        if (a_cas(&hdr->head, &head, head + need, REL, RLX))
            break;
    }
    desc->claim = head;
    desc->pad = pad;
    desc->pos = head + pad;
    desc->length = length;
    desc->data = ring->data + ((desc->pos & ring->mask) << RIP_CELL_SHIFT);
    return RIP_OK;
}

void rip_write_commit(rip_ring *ring, const rip_desc *desc, int notify)
{
    struct rip_meta *meta = meta_at(ring, desc->pos);
    CHAOS_POINT(); /* a claim held open: readers stop at it, producers pass it */
    /* V1 (release): a reader that loads this length (acquire) and then
     * re-loads the tag is sure to see that the record it had looked at is
     * gone; see confirm_stable().  Published to readers by P1 as usual. */
    a_store(&meta->length, desc->length, REL);
    if (!ring->multi) /* relaxed likewise: readers look at head only after P1 */
        a_store(&ring->hdr->head, desc->pos + cells_for_length(desc->length), RLX);
    CHAOS_POINT();
    /* P1: payload and length happen-before a reader that sees this tag (A2). */
    a_store(&meta->tag, RIP_TAG(desc->pos, RIP_STATE_COMMITTED), REL);
    if (desc->pad) {
        CHAOS_POINT(); /* the record is readable, the padding before it not yet */
        struct rip_meta *pad_meta = meta_at(ring, desc->claim);
        a_store(&pad_meta->length, desc->pad << RIP_CELL_SHIFT, REL); /* V1 */
        a_store(&pad_meta->tag, RIP_TAG(desc->claim, RIP_STATE_PADDING), REL); /* P1 */
    }
    /* I2 (release): a recoverer that sees the intent gone (acquire) finds our
     * tags published when its CAS comes; one that still sees it waits. */
    if (ring->multi)
        a_store(&ring->slot->produce_intent, 0, REL);
    if (notify)
        rip_notify_readers(ring);
}

void rip_write_abort(rip_ring *ring, const rip_desc *desc)
{
    if (!ring->multi)
        return; /* SPSC publishes head only at commit: an unpublished claim is just forgotten */
    /* MPMC claims cannot be returned (later producers may have claimed behind
     * it), so the whole claim becomes padding that readers skip. */
    struct rip_meta *meta = meta_at(ring, desc->claim);
    a_store(&meta->length, (desc->pad + cells_for_length(desc->length)) << RIP_CELL_SHIFT, REL); /* V1 */
    a_store(&meta->tag, RIP_TAG(desc->claim, RIP_STATE_PADDING), REL); /* P1 */
    a_store(&ring->slot->produce_intent, 0, REL); /* I2 */
    rip_notify_readers(ring);
}

/* Validates a record's tag-published length before anything is copied. */
static inline rip_status check_record(rip_ring *ring, uint64_t pos, uint64_t length, int padding, uint64_t *cells)
{
    uint64_t n;
    if (padding) {
        if (length == 0 || (length & (RIP_CELL - 1)) != 0 || (length >> RIP_CELL_SHIFT) > ring->ncells)
            return RIP_CORRUPT;
        n = length >> RIP_CELL_SHIFT;
    } else {
        if (length > ring->max_message)
            return RIP_CORRUPT;
        n = cells_for_length(length);
        if ((pos & ring->mask) + n > ring->ncells)
            return RIP_CORRUPT; /* would read past the end of the data area */
    }
    if (pos + n > ring->cached_head) {
        /* Acquire is not needed for data (A2 covers it); head was stored before the tag. */
        ring->cached_head = a_load(&ring->hdr->head, ACQ);
        if (pos + n > ring->cached_head)
            return RIP_CORRUPT;
    }
    *cells = n;
    return RIP_OK;
}

/*
 * A length that failed check_record may be a race, not corruption: between
 * our acquire load of the tag (A2) and our load of the length, other
 * consumers may have taken the record, release may have passed it and a
 * producer may have written a new record's length into the same meta entry.
 * The length load is an acquire (V2) that pairs with the producer's release
 * store of it (V1), so if we read such a new length, the tag and cons we load
 * after it are at least as new as that producer's view: the tag is no longer
 * `tag` or cons has moved.  Only a value that is still the one published
 * with the tag we acted on - stable across the re-check - is reported as
 * corrupt.  SPSC has one consumer: nobody else can move its record away.
 */
static inline int confirm_stable(rip_ring *ring, struct rip_meta *meta, uint64_t pos, uint64_t tag)
{
    if (!ring->multi)
        return 1;
    return a_load(&meta->tag, RLX) == tag && a_load(&ring->hdr->cons, RLX) == pos; /* after V2 */
}

rip_status rip_read_begin(rip_ring *ring, rip_desc *desc)
{
    struct rip_header *hdr = ring->hdr;
    uint64_t pos, tag, length, cells;
    rip_status st;

    if (unlikely(ring->fork_generation != rip_fork_generation ||
                 !(ring->multi ? ring->slot != NULL : ring->is_consumer))) {
        if ((st = rip_ensure_role(ring, 0)) != RIP_OK)
            return st;
    }
    /* Every pass either returns or follows a move of cons by another
     * consumer (a lost CAS, a record another consumer took) or a padding
     * record we skipped ourselves: no pass repeats on unchanged state, so a
     * corrupt segment cannot keep us here.  Live consumers' progress can
     * (lock-free, not wait-free), as with any CAS loop. */
    for (;;) {
        /* Relaxed: SPSC owns cons; for MPMC the CAS below decides, and the
         * tag (A2) carries the data's visibility. */
        pos = a_load(&hdr->cons, RLX);
        struct rip_meta *meta = meta_at(ring, pos);
        CHAOS_POINT();
        tag = a_load(&meta->tag, ACQ); /* A2: pairs with P1 */
        int padding = tag == RIP_TAG(pos, RIP_STATE_PADDING);
        if (!padding && tag != RIP_TAG(pos, RIP_STATE_COMMITTED)) {
            if (ring->multi && tag == RIP_TAG(pos, RIP_STATE_CONSUMED)) {
                /* Another consumer took it between our two loads: its CAS of
                 * cons came before its CONSUMED store (R2), which our A2 saw,
                 * so cons has moved - unless the tag was never written by a
                 * consumer, and the segment is corrupt. */
                if (a_load(&hdr->cons, RLX) == pos)
                    return give_up_consuming(ring, RIP_CORRUPT);
                continue;
            }
            if (ring->multi)
                a_store(&ring->slot->consume_intent, 0, RLX);
            if (a_load(&hdr->flags, ACQ) & RIP_FLAG_WRITER_CLOSED) {
                /* The writer set the flag after its last commit: look once
                 * more; a retry follows only a change of tag or cons. */
                if (a_load(&meta->tag, ACQ) == tag && a_load(&hdr->cons, RLX) == pos)
                    return RIP_CLOSED;
                continue;
            }
            return RIP_EMPTY;
        }
        CHAOS_POINT(); /* the record may be taken, released and reused here */
        length = a_load(&meta->length, ACQ); /* V2: pairs with V1; data ordered by A2 */
        if ((st = check_record(ring, pos, length, padding, &cells)) != RIP_OK) {
            if (!confirm_stable(ring, meta, pos, tag))
                continue; /* the record moved on under us: a race, not corruption */
            return give_up_consuming(ring, st);
        }
        if (!ring->multi) {
            if (padding) {
                a_store(&hdr->cons, pos + cells, RLX);
                a_store(&hdr->release, pos + cells, REL); /* R3 */
                continue;
            }
            break;
        }
        if (!padding)
            a_store(&ring->slot->consume_intent, pos + 1, RLX); /* published by C2 */
        CHAOS_POINT();
        /* C2 */
        if (a_cas(&hdr->cons, &pos, pos + cells, REL, RLX)) {
            if (!padding)
                break;
            a_store(&meta->tag, RIP_TAG(pos, RIP_STATE_CONSUMED), REL); /* R2 */
            rip_advance_release(ring);
        }
    }
    desc->claim = desc->pos = pos;
    desc->pad = 0;
    desc->length = length;
    desc->data = ring->data + ((pos & ring->mask) << RIP_CELL_SHIFT);
    return RIP_OK;
}

void rip_read_done(rip_ring *ring, const rip_desc *desc)
{
    uint64_t end = desc->pos + cells_for_length(desc->length);
    if (!ring->multi) {
        /* Relaxed: only this consumer reads cons; the space is handed to the
         * producer by rip_read_publish's release store. */
        a_store(&ring->hdr->cons, end, RLX);
    } else {
        /* R2: our copy-out happens-before whoever frees these cells (A3). */
        a_store(&meta_at(ring, desc->pos)->tag, RIP_TAG(desc->pos, RIP_STATE_CONSUMED), REL);
        a_store(&ring->slot->consume_intent, 0, REL); /* I2 */
    }
}

void rip_read_publish(rip_ring *ring)
{
    if (!ring->multi) {
        /* R3: every copy-out before it happens-before the producer's reuse (A1). */
        a_store(&ring->hdr->release, a_load(&ring->hdr->cons, RLX), REL);
    } else {
        CHAOS_POINT(); /* consumed but not released: another consumer may release it */
        rip_advance_release(ring);
    }
}

void rip_read_end(rip_ring *ring, const rip_desc *desc, int notify)
{
    rip_read_done(ring, desc);
    rip_read_publish(ring);
    if (notify)
        rip_notify_writers(ring);
}

int rip_readable(rip_ring *ring)
{
    uint64_t pos = a_load(&ring->hdr->cons, ACQ);
    uint64_t tag = a_load(&meta_at(ring, pos)->tag, ACQ);
    return tag == RIP_TAG(pos, RIP_STATE_COMMITTED) || tag == RIP_TAG(pos, RIP_STATE_PADDING);
}

/* How far readers have claimed: grows with every message taken, by any
 * process.  A watcher that saw the same value before and after knows that
 * nothing was taken meanwhile (ringipc/mp/readiness.py). */
uint64_t rip_read_position(rip_ring *ring)
{
    return a_load(&ring->hdr->cons, ACQ);
}

int rip_writable(rip_ring *ring, uint64_t length)
{
    uint64_t cells = cells_for_length(length);
    uint64_t head = a_load(&ring->hdr->head, ACQ);
    uint64_t rel = a_load(&ring->hdr->release, ACQ);
    if (rel > head)
        return 1; /* head moved meanwhile: let the caller retry */
    if (head + padding_before(ring, head, cells) + cells - rel <= ring->ncells)
        return 1;
    return ring->multi && a_load(&meta_at(ring, rel)->tag, ACQ) == RIP_TAG(rel, RIP_STATE_CONSUMED);
}

uint64_t rip_used_bytes(rip_ring *ring)
{
    uint64_t rel = a_load(&ring->hdr->release, ACQ);
    uint64_t head = a_load(&ring->hdr->head, ACQ);
    return head > rel ? (head - rel) << RIP_CELL_SHIFT : 0;
}

uint32_t rip_flags(rip_ring *ring) { return a_load(&ring->hdr->flags, ACQ); }

void rip_close_side(rip_ring *ring, uint32_t flag)
{
    atomic_fetch_or_explicit(&ring->hdr->flags, flag, SEQ_CST);
    rip_notify_readers(ring);
    rip_notify_writers(ring);
}
