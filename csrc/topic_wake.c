/*
 * Waking a topic's sleepers (subscribers waiting for data, lossless
 * publishers waiting for space, publishers and joiners waiting for the
 * lock), and taking back the registrations of sleepers that died.  The
 * sleeping side is csrc/topic_wait.c; the futex or semaphore calls are the
 * ring's wait backend (csrc/ring_backend.c).
 */
#include "topic_internal.h"

/*
 * Lowers each waiter count to the sleepers of live slots (the argument of
 * csrc/ring_waiters.c: a slot's count is raised before the header's and
 * lowered after it, so a dead process's registration is the only thing a
 * recount can take back; the sequence half makes the CAS fail on any change).
 */
void tp_recount(tp_handle *h)
{
    for (int which = 0; which < 3; which++) {
        _Atomic uint64_t *word = tp_waiters_word(h, which);
        uint64_t seen = a_load(word, ACQ);
        if (TP_WAITERS_COUNT(seen) == 0)
            continue;
        uint64_t live = 0;
        for (uint32_t i = 0; i < TP_MAX_SLOTS; i++) {
            struct tp_slot *s = &h->slots[i];
            uint64_t owner = a_load(&s->owner, ACQ);
            if (!tp_owner_is_live_word(owner))
                continue;
            uint32_t n = a_load(&s->sleepers[which], ACQ);
            if (n != 0 && rip_owner_alive(owner))
                live += n;
        }
        if (live < TP_WAITERS_COUNT(seen)) {
            uint64_t want = (((seen >> 32) + 1) << 32) | live;
            a_cas(word, &seen, want, ACQ_REL, RLX);
        }
    }
}

/*
 * The futex word's low bit is "armed": a sleeper sets it (F2 side) before it
 * re-checks and sleeps; a notifier (after F1) bumps the word and wakes only
 * if the bit is set, clearing it.  So a burst of publishes (or of reads, for
 * a waiting publisher) makes one wake call, not one per message while the
 * woken sleepers are on their way out; and a sleeper that died leaves at
 * most one wasted call behind.  No wake-up is lost: a notifier that does not
 * see the bit loaded the word before the sleeper's RMW, so (F1/F2) the
 * sleeper's re-check sees the change; one that sees it changes the word, so
 * a sleeper that has not reached FUTEX_WAIT yet fails its compare (with the
 * semaphore backend the post waits for it instead).  Only notifiers change
 * the value (setting a set bit changes nothing), so a failed CAS means
 * another notifier bumped it and wakes.
 */
void tp_wake(tp_handle *h, int which)
{
    _Atomic uint32_t *futex = tp_futex_word(h, which);
    uint32_t v = a_load(futex, RLX);
    if (!(v & 1u) || !a_cas(futex, &v, (v + 2u) & ~1u, RLX, RLX))
        return;
    uint32_t waiters = TP_WAITERS_COUNT(a_load(tp_waiters_word(h, which), RLX));
    if (rip_backend_wake(futex, tp_sem(h, which), waiters ? waiters : 1)) {
        h->idle_wakes[which] = 0;
    } else if (++h->idle_wakes[which] >= TP_RECOUNT_AFTER_IDLE_WAKES) {
        /* The count names someone who never wakes: a sleeper that died. */
        h->idle_wakes[which] = 0;
        tp_recount(h);
    }
}
