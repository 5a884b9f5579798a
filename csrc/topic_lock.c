/*
 * What only the holder of the publisher lock (csrc/topic_internal.h) may
 * look at: the records between tail and head, and the lowest position of a
 * live subscriber (lossless).  Publishing (csrc/topic_publish.c) and joining
 * (csrc/topic_subscribe.c) both run under the lock.
 */
#include "topic_internal.h"

/*
 * The record at `p` as seen by the lock holder (no publisher can change it
 * meanwhile, so a bad value is corruption, not a race).
 */
tp_status tp_record_at(tp_handle *h, uint64_t p, uint64_t head, uint64_t *cells, int *committed,
                        uint64_t *seq)
{
    struct tp_meta *m = tp_meta_at(h, p);
    uint64_t tag = a_load(&m->tag, ACQ);
    uint64_t off = p & h->mask;
    uint64_t c;
    if (tag == TP_TAG(p, TP_COMMITTED)) {
        uint64_t len = a_load(&m->length, RLX);
        if (len > h->max_message)
            return TP_CORRUPT;
        c = cells_for_length(len);
        *committed = 1;
    } else if (tag == TP_TAG(p, TP_PADDING)) {
        c = a_load(&m->length, RLX);
        if (c != h->ncells - off)
            return TP_CORRUPT;
        *committed = 0;
    } else {
        return TP_CORRUPT;
    }
    if (off + c > h->ncells || c > head - p)
        return TP_CORRUPT;
    *cells = c;
    if (seq)
        *seq = a_load(&m->seq, RLX);
    return TP_OK;
}

/* Lowest position of a live subscriber, clamped to [tail, head]; head if none. */
uint64_t tp_scan_min(tp_handle *h, uint64_t tail, uint64_t head)
{
    uint64_t low = head;
    uint32_t limit = tp_slot_limit(h);
    for (uint32_t i = 0; i < limit; i++) {
        struct tp_slot *s = &h->slots[i];
        if (!tp_owner_is_live_word(a_load(&s->owner, ACQ)) || a_load(&s->role, ACQ) != TP_ROLE_SUBSCRIBER)
            continue;
        /* R1 (acquire): pairs with the subscriber's release store of pos after
         * its copy, so the copy is done before these cells are overwritten. */
        uint64_t pos = a_load(&s->pos, ACQ);
        if (pos < tail)
            pos = tail; /* cannot be: the subscriber joined at or after tail */
        if (pos < low)
            low = pos;
    }
    return low;
}
