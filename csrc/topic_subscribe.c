/*
 * Joining a topic: a subscriber takes a slot, then under the publisher lock
 * its starting position - `history` records back, or (a copy arriving in
 * another process) the position it was copied at.  Joining under the lock
 * is what makes a lossless join safe: docs/topic.md, "History and joining".
 */
#include "topic_internal.h"

/* Joins at `pos` under the lock: slot role and position, free_until. */
static void join_at(tp_handle *h, uint64_t pos, uint64_t expected)
{
    struct tp_slot *s = &h->slots[h->slot];
    h->pos = pos;
    h->expected = expected;
    a_store(&s->pos, pos, RLX);
    a_store(&s->role, TP_ROLE_SUBSCRIBER, REL);
    uint64_t free_until = a_load(&h->hdr->free_until, RLX);
    if (pos < free_until)
        a_store(&h->hdr->free_until, pos, RLX);
    h->role = TP_ROLE_SUBSCRIBER;
}

static tp_status subscribe_locked(tp_handle *h, uint64_t history, int at, uint64_t at_pos,
                                  uint64_t at_expected, uint64_t at_seen)
{
    struct tp_header *hdr = h->hdr;
    if (h->slot < 0 && !tp_take_slot(h, TP_ROLE_IDLE))
        return TP_NO_SLOT;
    if (!tp_try_lock(h))
        return TP_BUSY;
    uint64_t head = a_load(&hdr->head, RLX), tail = a_load(&hdr->tail, RLX);
    uint64_t next_seq = a_load(&hdr->next_seq, RLX);
    if (tail > head || head - tail > h->ncells) {
        tp_unlock(h, 0);
        return TP_CORRUPT;
    }
    if (h->policy == TP_LATEST) {
        if (at) {
            h->seen_last = at_seen;
            join_at(h, head, at_expected);
        } else {
            uint64_t last = a_load(&hdr->last, RLX);
            h->seen_last = history > 0 ? TP_NO_RECORD : last;
            join_at(h, head, history > 0 && next_seq > 0 ? next_seq - 1 : next_seq);
        }
        tp_unlock(h, 0);
        return TP_OK;
    }
    if (at) {
        /* A copy of a subscriber in another process: its position if still
         * retained, else the oldest retained record (missed ones are counted
         * from the sequence numbers on the next read). */
        uint64_t pos = at_pos < tail || at_pos > head ? tail : at_pos;
        join_at(h, pos, at_expected);
        tp_unlock(h, 0);
        return TP_OK;
    }
    /* Count the retained messages, then skip all but the last `history`. */
    uint64_t count = 0, p = tail, c, seq;
    int committed;
    for (uint64_t steps = 0; p < head; steps++) {
        if (steps > h->ncells || tp_record_at(h, p, head, &c, &committed, NULL) != TP_OK) {
            tp_unlock(h, 0);
            return TP_CORRUPT;
        }
        count += committed;
        p += c;
    }
    uint64_t skip = history >= count ? 0 : count - history;
    p = tail;
    for (;;) {
        if (p == head) {
            join_at(h, head, next_seq);
            break;
        }
        if (tp_record_at(h, p, head, &c, &committed, &seq) != TP_OK) {
            tp_unlock(h, 0);
            return TP_CORRUPT;
        }
        if (committed && skip == 0) {
            join_at(h, p, seq);
            break;
        }
        skip -= committed;
        p += c;
    }
    tp_unlock(h, 0);
    return TP_OK;
}

tp_status tp_subscribe(tp_handle *h, uint64_t history)
{
    tp_forked(h);
    return subscribe_locked(h, history, 0, 0, 0, 0);
}

tp_status tp_subscribe_at(tp_handle *h, uint64_t pos, uint64_t expected, uint64_t seen_last)
{
    tp_forked(h);
    return subscribe_locked(h, 0, 1, pos, expected, seen_last);
}
