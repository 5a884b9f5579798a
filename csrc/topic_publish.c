/*
 * Publishing: tp_write_begin takes the publisher lock and the space (moving
 * tail, and on a lossless topic only past records every live subscriber has
 * read), the caller copies the payload, tp_write_commit publishes it.  The
 * order of the stores and why a publisher killed anywhere exposes nothing
 * partial: docs/topic.md, "Publishing".  The CHAOS_POINT()s sit between the
 * steps that readers and recoverers can observe.
 */
#include "topic_internal.h"

tp_status tp_write_begin(tp_handle *h, uint64_t length, void **dst)
{
    struct tp_header *hdr = h->hdr;
    if (length > h->max_message)
        return TP_TOO_BIG;
    if (!tp_try_lock(h)) {
        h->need_tail = 0; /* a bell armed now waits for the lock only (tp_bell_arm) */
        return TP_BUSY;
    }
    uint64_t head = a_load(&hdr->head, RLX), tail = a_load(&hdr->tail, RLX);
    if (tail > head || head - tail > h->ncells || head >= (1ull << 61)) {
        tp_unlock(h, 0);
        return TP_CORRUPT;
    }
    uint64_t cells = cells_for_length(length);
    uint64_t off = head & h->mask;
    uint64_t pad = off + cells > h->ncells ? h->ncells - off : 0;
    uint64_t end = head + pad + cells;
    if (end - tail > h->ncells) {
        uint64_t required = end - h->ncells, new_tail = tail;
        for (uint64_t steps = 0; new_tail < required; steps++) {
            uint64_t c;
            int committed;
            if (steps > h->ncells || tp_record_at(h, new_tail, head, &c, &committed, NULL) != TP_OK) {
                tp_unlock(h, 0);
                return TP_CORRUPT;
            }
            new_tail += c;
        }
        if (h->policy == TP_LOSSLESS) {
            uint64_t free_until = a_load(&hdr->free_until, RLX);
            if (free_until < new_tail || free_until > head) {
                free_until = tp_scan_min(h, tail, head);
                a_store(&hdr->free_until, free_until, RLX);
            }
            if (free_until < new_tail) {
                h->need_tail = new_tail;
                h->full_head = head;
                tp_unlock(h, 0);
                return TP_FULL;
            }
        }
        /* S1: tail before any overwrite; the fence orders the store before the
         * cell and metadata stores that follow (pairs with S2 in readers). */
        a_store(&hdr->tail, new_tail, RLX);
        a_fence(REL);
        CHAOS_POINT(); /* readers of the freed records now see tail past them */
    }
    h->need_tail = 0;
    h->wr_head = head;
    h->wr_pad = pad;
    h->wr_cells = cells;
    h->wr_length = length;
    *dst = h->data + (((head + pad) & h->mask) << TP_CELL_SHIFT);
    return TP_OK;
}

void tp_write_commit(tp_handle *h)
{
    struct tp_header *hdr = h->hdr;
    uint64_t seq = a_load(&hdr->next_seq, RLX);
    uint64_t p = h->wr_head;
    if (h->wr_pad) {
        struct tp_meta *m = tp_meta_at(h, p);
        a_store(&m->length, h->wr_pad, RLX);
        a_store(&m->seq, seq, RLX);
        a_store(&m->tag, TP_TAG(p, TP_PADDING), REL);
        CHAOS_POINT();
        p += h->wr_pad;
    }
    struct tp_meta *m = tp_meta_at(h, p);
    a_store(&m->length, h->wr_length, RLX);
    a_store(&m->seq, seq, RLX);
    a_store(&m->tag, TP_TAG(p, TP_COMMITTED), REL); /* P1 */
    CHAOS_POINT(); /* a tag beyond head: readers must not look at it yet */
    a_store(&hdr->next_seq, seq + 1, RLX);
    a_store(&hdr->head, p + h->wr_cells, REL); /* P2: the record is published */
    CHAOS_POINT(); /* head moved, last not yet: latest readers see the previous value */
    a_store(&hdr->last, p, REL);               /* P3: after head, see docs/topic.md */
    tp_unlock(h, 1);
}

void tp_write_abort(tp_handle *h) { tp_unlock(h, 0); }
