/*
 * Reading: tp_read_begin finds and validates the record at a subscriber's
 * position (or the newest one, latest-value), the caller copies it, and
 * tp_read_end runs the seqlock check (an acquire fence and a re-load of
 * tail) that throws away a copy a publisher may have overwritten.  The
 * validation rule and memory orders: docs/topic.md, "Reading".
 */
#include "topic_internal.h"

/* After a value failed validation: corrupt only if no overwrite can explain it. */
static tp_status unstable_or_corrupt(tp_handle *h, uint64_t p)
{
    a_fence(ACQ); /* S2 */
    return a_load(&h->hdr->tail, RLX) > p ? TP_TORN : TP_CORRUPT;
}

int tp_readable(tp_handle *h)
{
    if (h->policy == TP_LATEST) {
        uint64_t last = a_load(&h->hdr->last, RLX);
        return last != TP_NO_RECORD && last != h->seen_last;
    }
    return a_load(&h->hdr->head, RLX) != h->pos;
}

static tp_status read_latest(tp_handle *h, const void **src, uint64_t *length)
{
    struct tp_header *hdr = h->hdr;
    for (;;) {
        uint64_t l = a_load(&hdr->last, ACQ); /* pairs with P3 (and so P1) */
        if (l == TP_NO_RECORD || l == h->seen_last)
            return TP_EMPTY;
        struct tp_meta *m = tp_meta_at(h, l);
        CHAOS_POINT();
        uint64_t tag = a_load(&m->tag, ACQ);
        uint64_t len = a_load(&m->length, RLX);
        uint64_t seq = a_load(&m->seq, RLX);
        uint64_t off = l & h->mask;
        if (unlikely(tag != TP_TAG(l, TP_COMMITTED) || len > h->max_message ||
                     off + cells_for_length(len) > h->ncells || seq < h->expected)) {
            if (unstable_or_corrupt(h, l) == TP_CORRUPT)
                return TP_CORRUPT;
            /* Overwritten.  Read again only if a newer record was published
             * since (so this loop repeats only after a publisher moved on);
             * else the newest record is being replaced by one not yet
             * complete - or by a publisher that died - and there is nothing
             * intact to read until the next publish. */
            if (a_load(&hdr->last, ACQ) != l)
                continue;
            h->seen_last = l;
            return TP_EMPTY;
        }
        h->rd_pos = l;
        h->rd_seq = seq;
        h->rd_length = len;
        *src = h->data + (off << TP_CELL_SHIFT);
        *length = len;
        return TP_OK;
    }
}

tp_status tp_read_begin(tp_handle *h, const void **src, uint64_t *length)
{
    struct tp_header *hdr = h->hdr;
    if (h->policy == TP_LATEST)
        return read_latest(h, src, length);
    uint64_t p = h->pos;
    for (;;) {
        uint64_t head = a_load(&hdr->head, ACQ); /* A1: pairs with P2 */
        if (p == head)
            break;
        if (unlikely(p > head))
            return TP_CORRUPT; /* head never moves back, and p came from it or tail */
        if (unlikely(head - p > h->ncells))
            goto lapped;
        struct tp_meta *m = tp_meta_at(h, p);
        CHAOS_POINT(); /* a publisher may lap us between head and the tag */
        uint64_t tag = a_load(&m->tag, ACQ);
        uint64_t off = p & h->mask;
        if (likely(tag == TP_TAG(p, TP_COMMITTED))) {
            uint64_t len = a_load(&m->length, RLX);
            uint64_t seq = a_load(&m->seq, RLX);
            uint64_t c = cells_for_length(len);
            if (unlikely(len > h->max_message || off + c > h->ncells || c > head - p || seq < h->expected)) {
                if (unstable_or_corrupt(h, p) == TP_CORRUPT)
                    return TP_CORRUPT;
                goto lapped;
            }
            h->pos = p;
            h->rd_pos = p;
            h->rd_next = p + c;
            h->rd_seq = seq;
            h->rd_length = len;
            *src = h->data + (off << TP_CELL_SHIFT);
            *length = len;
            return TP_OK;
        }
        if (tag == TP_TAG(p, TP_PADDING)) {
            uint64_t c = a_load(&m->length, RLX);
            if (unlikely(c != h->ncells - off || c > head - p)) {
                if (unstable_or_corrupt(h, p) == TP_CORRUPT)
                    return TP_CORRUPT;
                goto lapped;
            }
            a_fence(ACQ); /* S2: the padding was still this lap's */
            if (unlikely(a_load(&hdr->tail, RLX) > p))
                goto lapped;
            p += c;
            continue;
        }
        if (unstable_or_corrupt(h, p) == TP_CORRUPT)
            return TP_CORRUPT;
    lapped: {
            /* Overwritten before we read it (drop-oldest): go on at the
             * oldest retained record; the gap shows in the sequence numbers. */
            uint64_t t = a_load(&hdr->tail, ACQ);
            if (t <= p)
                return TP_CORRUPT; /* head - p > ncells with tail <= p breaks the invariant */
            p = t;
        }
    }
    h->pos = p;
    return TP_EMPTY;
}

tp_status tp_read_end(tp_handle *h)
{
    struct tp_header *hdr = h->hdr;
    CHAOS_POINT(); /* a publisher may overwrite the copy's source here */
    a_fence(ACQ); /* S2: the copy's loads before the re-load of tail */
    uint64_t tail = a_load(&hdr->tail, RLX);
    if (unlikely(tail > h->rd_pos)) {
        /* A publisher may have overwritten part of what was copied. */
        h->torn++;
        if (h->policy != TP_LATEST)
            h->pos = tail;
        else
            h->seen_last = h->rd_pos; /* counted as missed once a newer one is read */
        return TP_TORN;
    }
    h->missed += h->rd_seq - h->expected;
    h->expected = h->rd_seq + 1;
    if (h->policy == TP_LATEST) {
        h->seen_last = h->rd_pos;
        return TP_OK;
    }
    h->pos = h->rd_next;
    if (h->policy == TP_LOSSLESS && h->slot >= 0) {
        /* R1: release, the copy before the publisher's reuse of the cells. */
        a_store(&h->slots[h->slot].pos, h->pos, REL);
        a_fence(SEQ_CST); /* F1 for waiting publishers */
        if (TP_WAITERS_COUNT(a_load(&hdr->space_waiters, RLX)))
            tp_wake(h, TP_WAIT_SPACE);
        if (unlikely(a_load(&hdr->space_bells_armed, RLX)))
            tp_ring_bells(h, 1);
    }
    return TP_OK;
}
