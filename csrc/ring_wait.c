/*
 * Sleeping until the ring changes: spin briefly, then register as a waiter,
 * re-check, and sleep on a shared futex (or a process-shared POSIX semaphore
 * where futexes are missing, or when built with RINGIPC_WAIT=sem).
 *
 * Lost wake-up argument.  A waiter does
 *     waiters++ ; v = futex ; F2 ; check ; sleep(futex == v)
 * and a notifier does
 *     change ; F1 ; if (waiters) { futex++ ; wake }
 * F1 and F2 are seq_cst fences, so at least one side sees the other's first
 * step.  If the notifier saw waiters == 0, the waiter's check sees the change
 * and does not sleep.  If it saw the waiter, it bumps the futex word: a
 * waiter that read v before the bump fails FUTEX_WAIT's compare (EAGAIN) or
 * is woken; one that read v after the bump also sees the change in its check.
 * The semaphore backend replaces "futex == v" with a post per registered
 * waiter; extra posts only cause a spurious wake-up, which re-checks.
 *
 * "waiters++" is rip_sleeper_register (csrc/ring_waiters.c): the header
 * increment is preceded by one in the sleeper's slot, so that the count of a
 * process killed while asleep can be taken back.  A recount only removes
 * registrations of dead processes, so a live waiter stays counted from its
 * registration to its unregistration and the argument above still holds.
 * The waiter also raises a wake-wanted word after reading v, so that only
 * the first notifier after it went to sleep makes the wake system call; the
 * argument with that step is in csrc/ring_release.c.
 */
#include <errno.h>
#include <sched.h>
#include <limits.h>

#include "ring_internal.h"

/*
 * Spinning adapts per handle and direction.  A spin that sees the change
 * restores the full budget (`spin`, Ring.spin); one that ends in sleep
 * halves it, down to RIP_SPIN_FLOOR.  With more processes than CPUs the
 * peer a waiter spins for is usually not running, so every spin fails and
 * only burns the time slice the peer needs: the budget falls and waiters go
 * to sleep almost at once.  Every RIP_SPIN_PROBE_EVERY-th wait spins in
 * full whatever the budget, so a handle whose budget fell while its peer was
 * away (start-up, a burst of load) finds out when spinning pays again.
 */
#define RIP_SPIN_FLOOR 32u
#define RIP_SPIN_PROBE_EVERY 16u
#define RIP_YIELDS 2u

static rip_status wait_until(rip_ring *ring, _Atomic uint32_t *futex, sem_t *sem, _Atomic uint32_t *wanted,
                             int writer, uint64_t length, const struct timespec *deadline, uint32_t spin)
{
    uint32_t closing_flag = writer ? RIP_FLAG_READER_CLOSED : RIP_FLAG_WRITER_CLOSED;
#define READY() ((writer ? rip_writable(ring, length) : rip_readable(ring)) || (rip_flags(ring) & closing_flag))
    _Atomic uint32_t *budget = &ring->spin_budget[writer ? 1 : 0];
    uint32_t limit = a_load(budget, RLX);
    /* Every RIP_SPIN_PROBE_EVERY-th wait spins in full whatever the budget:
     * a budget that fell while the peer was away must be able to recover. */
    if (limit > spin || (a_fetch_add(&ring->spin_waits[writer ? 1 : 0], 1, RLX) % RIP_SPIN_PROBE_EVERY) == 0)
        limit = spin;
    for (uint32_t i = 0; i < limit; i++) {
        if (READY()) {
            a_store(budget, spin, RLX); /* spinning pays: spin in full again */
            return RIP_OK;
        }
        cpu_relax();
    }
    /* It did not pay: the peer is probably not running (more processes than
     * CPUs), and spinning only takes the CPU it needs.  Halve, down to a
     * floor that costs next to nothing. */
    a_store(budget, limit / 2 > RIP_SPIN_FLOOR ? limit / 2 : RIP_SPIN_FLOOR, RLX);
    /* Hand the CPU over before sleeping: if the peer waits for this CPU, it
     * runs now, and often does what we wait for before we are back - then
     * nobody sleeps and nobody pays a wake system call and the switch that
     * follows it.  With nothing else to run, sched_yield returns at once. */
    for (uint32_t i = 0; i < RIP_YIELDS; i++) {
        sched_yield();
        if (READY())
            return RIP_OK;
    }
    if (rip_deadline_passed(deadline))
        return RIP_TIMEOUT;
    rip_status st = rip_ensure_wait_slot(ring);
    if (st != RIP_OK)
        return st;
    struct rip_slot *slot = ring->slot; /* unregister where we registered */
    rip_sleeper_register(ring, slot, writer);
    uint32_t seen = a_load(futex, SEQ_CST);
    /* After reading `seen`: a notifier that takes this 1 bumps the futex
     * after our read, so our FUTEX_WAIT fails or is woken (csrc/ring_release.c). */
    a_store(wanted, 1, SEQ_CST);
    a_fence(SEQ_CST); /* F2: pairs with F1 in notify() */
    st = READY() ? RIP_OK : rip_backend_wait(futex, sem, seen, deadline);
    rip_sleeper_unregister(ring, slot, writer);
    return st;
#undef READY
}

rip_status rip_wait_readable(rip_ring *ring, const struct timespec *deadline, uint32_t spin)
{
    struct rip_header *hdr = ring->hdr;
    return wait_until(ring, &hdr->data_futex, &hdr->data_sem, &hdr->data_wake_wanted, 0, 0, deadline, spin);
}

rip_status rip_wait_writable(rip_ring *ring, uint64_t length, const struct timespec *deadline, uint32_t spin)
{
    struct rip_header *hdr = ring->hdr;
    return wait_until(ring, &hdr->space_futex, &hdr->space_sem, &hdr->space_wake_wanted, 1, length, deadline, spin);
}

int rip_bell_arm(rip_ring *ring, int writer, uint64_t length)
{
    uint32_t closing_flag = writer ? RIP_FLAG_READER_CLOSED : RIP_FLAG_WRITER_CLOSED;
    if (rip_bell_set_armed(ring, writer) != 0)
        return -1;
    a_fence(SEQ_CST); /* F2: pairs with F1 in notify() (csrc/ring_bell.c) */
    /* length UINT64_MAX: the caller waits for something the ring cannot
     * see (a free slot of a bounded queue); only closing counts as ready. */
    int ready = (writer ? length != UINT64_MAX && rip_writable(ring, length) : rip_readable(ring)) ||
                (rip_flags(ring) & closing_flag);
    if (ready) /* the caller will not wait: spare the writers a ring nobody needs */
        rip_bell_disarm(ring, writer);
    return ready;
}

/*
 * A bounded busy-poll for callers that park on a doorbell rather than a
 * futex (an event loop, ringipc.asyncio): look at the ring for up to
 * `spin_ns` of monotonic time before arming.  Parking costs the watcher an
 * epoll round and the notifier a sendto; a peer that answers within a few
 * microseconds is cheaper to wait for here.  Nothing is registered while
 * spinning, so writers pay nothing for it (no armed bit, no datagram).  The
 * clock (vDSO, no system call) is read every RIP_SPIN_CLOCK_EVERY turns.
 * Returns 1 as soon as the ring is ready (as rip_bell_arm counts ready),
 * 0 when the time is up.  Callers release the GIL around it.
 */
#define RIP_SPIN_CLOCK_EVERY 64u

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int rip_spin_ready(rip_ring *ring, int writer, uint64_t length, uint64_t spin_ns)
{
    uint32_t closing_flag = writer ? RIP_FLAG_READER_CLOSED : RIP_FLAG_WRITER_CLOSED;
    uint64_t until = monotonic_ns() + spin_ns;
    for (uint32_t i = 1;; i++) {
        if ((writer ? rip_writable(ring, length) : rip_readable(ring)) || (rip_flags(ring) & closing_flag))
            return 1;
        cpu_relax();
        if (i % RIP_SPIN_CLOCK_EVERY == 0 && monotonic_ns() >= until)
            return 0;
    }
}
