/*
 * A topic's doorbells: the ring's mechanism (csrc/bell.c; protocol and lost
 * wake-up argument in csrc/ring_bell.c) over the topic's slots and header.
 * A subscriber's data bell is rung by the next publish (tp_unlock), a
 * publisher's space bell by the next read of a lossless subscriber, a
 * subscriber leaving or being recovered, or the publisher lock being given
 * up (an async publisher waits for the lock and for space alike).  The arm,
 * whose re-check needs the read and publish paths, is in csrc/topic_wait.c.
 */
#include "topic_internal.h"

static inline _Atomic uint64_t *bell_bits(tp_handle *h, int writers)
{
    return writers ? h->hdr->space_bells : h->hdr->data_bells;
}

static inline _Atomic uint32_t *bell_count(tp_handle *h, int writers)
{
    return writers ? &h->hdr->space_bells_armed : &h->hdr->data_bells_armed;
}

void tp_ring_bells(tp_handle *h, int writers)
{
    struct tp_slot *first = &h->slots[0];
    rip_bells_ring(bell_bits(h, writers), TP_MAX_SLOTS / 64, bell_count(h, writers),
                   writers ? &first->space_bell : &first->data_bell, sizeof(struct tp_slot));
}

void tp_bell_forget(tp_handle *h, uint32_t index)
{
    struct tp_slot *s = &h->slots[index];
    a_store(&s->data_bell, 0, RLX);
    a_store(&s->space_bell, 0, RLX);
    rip_bells_clear(bell_bits(h, 0), bell_count(h, 0), index);
    rip_bells_clear(bell_bits(h, 1), bell_count(h, 1), index);
}

/* Callers have run tp_forked() first (every handle operation does), so a
 * slot in the handle is this process's, not a parent's. */
static int own_slot(tp_handle *h) { return h->slot >= 0; }

tp_status tp_bell_install(tp_handle *h, int writer, uint64_t name)
{
    if (!own_slot(h))
        return TP_NO_SLOT;
    struct tp_slot *s = &h->slots[h->slot];
    _Atomic uint64_t *word = writer ? &s->space_bell : &s->data_bell;
    if (name == 0)
        rip_bells_clear(bell_bits(h, writer), bell_count(h, writer), (uint32_t)h->slot);
    else if (a_load(word, RLX) != 0)
        return TP_BUSY; /* one bell per handle and direction */
    /* Release: published to notifiers by the fetch_or of the next arm. */
    a_store(word, name, REL);
    return TP_OK;
}

void tp_bell_disarm(tp_handle *h, int writer)
{
    if (own_slot(h))
        rip_bells_clear(bell_bits(h, writer), bell_count(h, writer), (uint32_t)h->slot);
}

int tp_bell_set_armed(tp_handle *h, int writer)
{
    if (!own_slot(h))
        return -1;
    rip_bells_set(bell_bits(h, writer), bell_count(h, writer), (uint32_t)h->slot);
    return 0;
}
