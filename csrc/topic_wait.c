/*
 * Sleeping until a topic changes: spin briefly, then register as a sleeper
 * (in the handle's slot and the header), arm the futex word, re-check, and
 * sleep through the ring's wait backend (csrc/ring_backend.c: a futex, or a
 * process-shared POSIX semaphore).  Waking: csrc/topic_wake.c.  One call is
 * one slice; the caller loops, checking signals and its deadline.
 */
#include <sched.h>

#include "topic_internal.h"

#define TP_YIELDS_BEFORE_SLEEP 16u

static int lock_free(tp_handle *h) { return a_load(&h->hdr->pub_owner, RLX) == 0; }

static int space_ready(tp_handle *h)
{
    struct tp_header *hdr = h->hdr;
    uint64_t head = a_load(&hdr->head, ACQ);
    if (head != h->full_head)
        return 1; /* another publisher moved on: try again */
    return tp_scan_min(h, a_load(&hdr->tail, ACQ), head) >= h->need_tail;
}

static int ready(tp_handle *h, int which)
{
    return which == TP_WAIT_DATA ? tp_readable(h) : which == TP_WAIT_SPACE ? space_ready(h) : lock_free(h);
}

static tp_status sleep_on(tp_handle *h, int which, const struct timespec *deadline, uint32_t spin)
{
    for (uint32_t i = 0; i < spin; i++) {
        if (ready(h, which))
            return TP_OK;
        cpu_relax();
    }
    /* No spinning (one CPU for this process): yield a few times first.  The
     * CPU usually has other subscribers of the same topic waiting to run, so
     * a yield hands it to them and often comes back to data, where a futex
     * sleep would cost a system call on both sides; alone on its CPU a
     * yield returns at once and this is a few microseconds of polling. */
    for (uint32_t i = 0; spin == 0 && i < TP_YIELDS_BEFORE_SLEEP; i++) {
        if (ready(h, which))
            return TP_OK;
        sched_yield();
    }
    if (rip_deadline_passed(deadline))
        return TP_TIMEOUT;
    if (h->slot < 0) {
        if (!tp_take_slot(h, TP_ROLE_IDLE))
            return TP_NO_SLOT;
    }
    struct tp_slot *s = &h->slots[h->slot];
    _Atomic uint64_t *waiters = tp_waiters_word(h, which);
    _Atomic uint32_t *futex = tp_futex_word(h, which);
    a_fetch_add(&s->sleepers[which], 1, RLX);             /* W1 via the RMW below */
    a_fetch_add(waiters, TP_WAITERS_REGISTER, SEQ_CST);
    uint32_t seen = atomic_fetch_or_explicit(futex, 1u, SEQ_CST) | 1u; /* arm: see tp_wake() */
    a_fence(SEQ_CST); /* F2 */
    tp_status st = TP_OK;
    if (!ready(h, which)) {
        rip_status r = rip_backend_wait(futex, tp_sem(h, which), seen, deadline);
        st = r == RIP_TIMEOUT ? TP_TIMEOUT : r == RIP_INTERRUPTED ? TP_INTERRUPTED : TP_OK;
    }
    a_fetch_add(waiters, TP_WAITERS_UNREGISTER, SEQ_CST);
    a_fetch_sub(&s->sleepers[which], 1, REL);             /* W2 */
    return st;
}

tp_status tp_wait_readable(tp_handle *h, const struct timespec *deadline, uint32_t spin)
{
    return sleep_on(h, TP_WAIT_DATA, deadline, spin);
}

tp_status tp_wait_writable(tp_handle *h, tp_status why, const struct timespec *deadline, uint32_t spin)
{
    return sleep_on(h, why == TP_FULL ? TP_WAIT_SPACE : TP_WAIT_LOCK, deadline, spin);
}

/*
 * Arming a doorbell (csrc/topic_bell.c): the watcher's side of the F1/F2
 * pair, as rip_bell_arm (csrc/ring_wait.c) - bit and count, F2, re-check.
 * A publisher is ready when the lock is free and, after a TP_FULL attempt,
 * space_ready() says the subscribers it waited for have moved.
 */
int tp_bell_arm(tp_handle *h, int writer)
{
    if (tp_bell_set_armed(h, writer) != 0)
        return -1;
    a_fence(SEQ_CST); /* F2: pairs with F1 in tp_unlock() and tp_read_end() */
    int ready = writer ? lock_free(h) && (h->need_tail == 0 || space_ready(h)) : tp_readable(h);
    if (ready) /* the caller will not wait: spare the notifiers a ring nobody needs */
        tp_bell_disarm(h, writer);
    return ready;
}
