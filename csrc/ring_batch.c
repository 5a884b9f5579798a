/*
 * Batches of messages: one claim, one publication.
 *
 * A single write pays, per message, for its claim (a CAS on head in MPMC)
 * and its publication (SPSC: a store of head that the reader, close behind,
 * must fetch from the producer's core).  rip_write_many plans as many
 * messages as fit in one contiguous claim, claims them with one CAS (MPMC)
 * or none (SPSC), copies them all, and publishes them together.
 *
 * Order of publication, and why:
 *  - SPSC stores head for the whole batch first, then the tags: a reader
 *    that sees a tag checks the record against head, which must cover it.
 *  - Tags are stored in order, wrap padding first, so that what a producer
 *    killed part-way leaves is what single sends leave: a gap-free prefix of
 *    its messages, then a stale tag.
 *  - The intent in the producer's slot stays at or ahead of its first
 *    unpublished record and inside its claim: before each tag is stored, the
 *    intent moves on to the record after it (I1 below).  A recoverer that
 *    finds a stale tag at cons therefore always sees this producer's intent
 *    inside the stuck range while the producer lives (so it waits), and a
 *    dead one's there after it died (so it pads from the stale tag to the
 *    next published record: every unpublished record of the batch, nothing
 *    else).  See owners_all_dead() in csrc/ring_recover.c.
 *  - A batch never crosses the end of the data area: records may not wrap,
 *    and wrap padding stays where single writes put it, in front of the
 *    batch's first record.
 */
#include <string.h>

#include "ring_claim.h"

/* How many of msgs[0..n) fit in one claim at `head` (at least the first,
 * which the caller has made sure fits after `pad` cells of wrap padding),
 * and the cells they need in all. */
static size_t plan_batch(rip_ring *ring, const rip_msg *msgs, size_t n, uint64_t head, uint64_t pad, uint64_t *need)
{
    uint64_t total = pad + cells_for_length(msgs[0].length);
    size_t count = 1;
    for (; count < n && count < RIP_BATCH_MAX; count++) {
        uint64_t length = msgs[count].length;
        if (length > ring->max_message)
            break; /* the caller reports it when it comes first */
        uint64_t cells = cells_for_length(length);
        if (padding_before(ring, head + total, cells) != 0)
            break; /* the next claim pads and wraps */
        if (head + total + cells - ring->cached_release > ring->ncells)
            break; /* a fresher release might allow more; the next call looks */
        total += cells;
    }
    *need = total;
    return count;
}

rip_status rip_write_many(rip_ring *ring, const rip_msg *msgs, size_t n, size_t *written)
{
    struct rip_header *hdr = ring->hdr;
    uint64_t head, need, pad, pos;
    uint64_t starts[RIP_BATCH_MAX];
    size_t count;
    rip_status st;

    *written = 0;
    if (n == 0)
        return RIP_OK;
    if (unlikely(msgs[0].length > ring->max_message))
        return RIP_TOO_BIG;
    if (unlikely((st = ready_to_claim(ring)) != RIP_OK))
        return st;
    uint64_t first_cells = cells_for_length(msgs[0].length);
    /* Relaxed: SPSC owns head; for MPMC a stale head only fails the CAS. */
    head = a_load(&hdr->head, RLX);
    for (;;) {
        pad = padding_before(ring, head, first_cells);
        st = check_room(ring, head, pad + first_cells); /* refreshes cached_release if needed */
        if (unlikely(st != RIP_OK)) {
            if (st == RIP_EMPTY) {
                head = a_load(&hdr->head, RLX);
                continue;
            }
            return give_up_claiming(ring, st);
        }
        count = plan_batch(ring, msgs, n, head, pad, &need);
        if (!ring->multi)
            break;
        /* Relaxed: published by C1, as in rip_write_begin. */
        a_store(&ring->slot->produce_intent, head + 1, RLX);
        CHAOS_POINT();
        /* C1: one claim for the whole batch */
        if (a_cas(&hdr->head, &head, head + need, REL, RLX))
            break;
    }
    pos = head + pad;
    for (size_t i = 0; i < count; i++) {
        starts[i] = pos;
        memcpy(ring->data + ((pos & ring->mask) << RIP_CELL_SHIFT), msgs[i].data, msgs[i].length);
        /* V1, as in rip_write_commit; published by the tag stores below */
        a_store(&meta_at(ring, pos)->length, msgs[i].length, REL);
        pos += cells_for_length(msgs[i].length);
    }
    if (!ring->multi) /* relaxed: readers look at head only after a tag (P1) */
        a_store(&hdr->head, head + need, RLX);
    if (pad) {
        struct rip_meta *pad_meta = meta_at(ring, head);
        a_store(&pad_meta->length, pad << RIP_CELL_SHIFT, REL); /* V1 */
        if (ring->multi) /* I1 */
            a_store(&ring->slot->produce_intent, starts[0] + 1, REL);
        a_store(&pad_meta->tag, RIP_TAG(head, RIP_STATE_PADDING), REL); /* P1 */
    }
    for (size_t i = 0; i < count; i++) {
        CHAOS_BATCH_TAG(i); /* a death here leaves a prefix of the batch published: see above */
        if (ring->multi && i + 1 < count)
            a_store(&ring->slot->produce_intent, starts[i + 1] + 1, REL); /* I1 */
        /* P1 for each record, in order */
        a_store(&meta_at(ring, starts[i])->tag, RIP_TAG(starts[i], RIP_STATE_COMMITTED), REL);
    }
    if (ring->multi)
        a_store(&ring->slot->produce_intent, 0, REL); /* I2, as in rip_write_commit */
    *written = count;
    return RIP_OK;
}
