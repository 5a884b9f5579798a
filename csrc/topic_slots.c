/*
 * A topic's slot table: every publisher and subscriber handle holds a slot
 * (its owner word, position, role and sleeper counts), given up on close and
 * taken back from dead processes by tp_recover, with the publisher lock of a
 * dead holder.
 */
#include "topic_internal.h"

static void bump_hint(tp_handle *h, uint32_t index)
{
    uint32_t hint = a_load(&h->hdr->slot_hint, RLX);
    while (hint < index + 1 && !a_cas(&h->hdr->slot_hint, &hint, index + 1, ACQ_REL, RLX))
        ;
}

int tp_take_slot(tp_handle *h, uint32_t role)
{
    for (uint32_t i = 0; i < TP_MAX_SLOTS; i++) {
        uint64_t expected = 0;
        struct tp_slot *s = &h->slots[i];
        if (a_load(&s->owner, RLX) != 0)
            continue;
        if (!a_cas(&s->owner, &expected, h->owner, ACQ_REL, RLX))
            continue;
        for (int w = 0; w < 3; w++)
            a_store(&s->sleepers[w], 0, RLX);
        tp_bell_forget(h, i); /* a previous holder's, if it was recovered mid-arm */
        a_store(&s->pos, 0, RLX);
        a_store(&s->role, role, REL);
        bump_hint(h, i);
        h->slot = (int)i;
        return 1;
    }
    return 0;
}

static void give_up_slot(tp_handle *h)
{
    if (h->slot < 0)
        return;
    struct tp_slot *s = &h->slots[h->slot];
    h->slot = -1;
    if (a_load(&s->owner, RLX) != h->owner)
        return; /* taken from us (a corrupt segment): not ours to free */
    tp_bell_forget(h, (uint32_t)(s - h->slots));
    a_store(&s->role, TP_ROLE_FREE, RLX);
    a_store(&s->owner, 0, REL);
    /* A lossless publisher may wait for this subscriber. */
    a_fence(SEQ_CST);
    if (TP_WAITERS_COUNT(a_load(&h->hdr->space_waiters, RLX)))
        tp_wake(h, TP_WAIT_SPACE);
    if (a_load(&h->hdr->space_bells_armed, RLX))
        tp_ring_bells(h, 1);
}

tp_status tp_open_publisher(tp_handle *h)
{
    h->role = TP_ROLE_PUBLISHER;
    if (h->slot >= 0)
        return TP_OK;
    return tp_take_slot(h, TP_ROLE_PUBLISHER) ? TP_OK : TP_NO_SLOT;
}

void tp_close(tp_handle *h)
{
    tp_forked(h);
    give_up_slot(h);
}

uint32_t tp_live_subscribers(tp_handle *h)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < TP_MAX_SLOTS; i++)
        if (tp_owner_is_live_word(a_load(&h->slots[i].owner, ACQ)) &&
            a_load(&h->slots[i].role, ACQ) == TP_ROLE_SUBSCRIBER)
            n++;
    return n;
}

/* ---- dead processes */

int tp_recover(tp_handle *h)
{
    struct tp_header *hdr = h->hdr;
    int freed = 0;
    uint64_t holder = a_load(&hdr->pub_owner, ACQ);
    if (holder != 0 && holder != h->owner && !rip_owner_alive(holder)) {
        /* Killed while publishing: nothing it wrote is published (head is
         * stored last), so the next holder simply starts at head. */
        if (a_cas(&hdr->pub_owner, &holder, 0, ACQ_REL, RLX))
            freed++;
    }
    for (uint32_t i = 0; i < TP_MAX_SLOTS; i++) {
        struct tp_slot *s = &h->slots[i];
        uint64_t owner = a_load(&s->owner, ACQ);
        if (!tp_owner_is_live_word(owner) || owner == h->owner || rip_owner_alive(owner))
            continue;
        /* Mark it being released first, so that no joiner can take it while
         * its role and counts are reset. */
        if (!a_cas(&s->owner, &owner, TP_OWNER_RELEASING, ACQ_REL, RLX))
            continue;
        CHAOS_POINT();
        a_store(&s->role, TP_ROLE_FREE, RLX);
        for (int w = 0; w < 3; w++)
            a_store(&s->sleepers[w], 0, RLX);
        tp_bell_forget(h, i);
        a_store(&s->owner, 0, REL);
        freed++;
    }
    tp_recount(h);
    if (freed) {
        a_fence(SEQ_CST);
        tp_wake(h, TP_WAIT_LOCK);
        tp_wake(h, TP_WAIT_SPACE);
        if (a_load(&hdr->space_bells_armed, RLX))
            tp_ring_bells(h, 1);
    }
    return freed;
}
