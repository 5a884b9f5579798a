/*
 * The spin budget of csrc/sync.c's waiters (see struct rip_sync_spin in
 * sync.h): how many `pause`s a full spin is on this CPU, and how a handle's
 * budget adapts.  Included by sync.c only; everything here is static.
 */
#ifndef RINGIPC_SYNC_SPIN_H
#define RINGIPC_SYNC_SPIN_H

#include <sched.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "ring_internal.h" /* likely */
#include "sync.h"

/* A full spin lasts about RIP_SYNC_SPIN_NS whatever the CPU: `pause` takes
 * from a few cycles (older x86) to ~140 (Skylake and later), so the count of
 * iterations is measured once per process.  0: not measured yet; 1: one
 * CPU online, nobody spins (the holder cannot run while we do). */
static _Atomic uint32_t full_spin;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t full_spin_iterations(void)
{
    uint32_t n = a_load(&full_spin, RLX);
    if (likely(n != 0))
        return n;
    if (sysconf(_SC_NPROCESSORS_ONLN) <= 1) {
        n = 1;
    } else {
        /* Best of a few short rounds: a preempted round would overstate the cost. */
        uint64_t best = UINT64_MAX;
        for (int round = 0; round < 4; round++) {
            uint64_t t0 = mono_ns();
            for (int i = 0; i < 256; i++)
                cpu_relax();
            uint64_t dt = mono_ns() - t0;
            best = dt < best ? dt : best;
        }
        uint64_t per = best / 256 ? best / 256 : 1;
        uint64_t iterations = RIP_SYNC_SPIN_NS / per;
        n = iterations < 4 * RIP_SYNC_SPIN_FLOOR ? 4 * RIP_SYNC_SPIN_FLOOR
            : iterations > 100000 ? 100000 : (uint32_t)iterations;
    }
    a_store(&full_spin, n, RLX);
    return n;
}

/* The spin's limit this time: the budget, or in full every PROBE_EVERY-th. */
static uint32_t spin_limit(struct rip_sync_spin *spin)
{
    uint32_t full = full_spin_iterations();
    if (full <= 1)
        return 0;
    uint32_t limit = spin->budget;
    if (limit == 0 || limit > full || (spin->spins++ % RIP_SYNC_SPIN_PROBE_EVERY) == 0)
        limit = full;
    return limit;
}

static void spin_paid(struct rip_sync_spin *spin, int paid, uint32_t limit)
{
    if (paid)
        spin->budget = 0;
    else
        spin->budget = limit / 2 > RIP_SYNC_SPIN_FLOOR ? limit / 2 : RIP_SYNC_SPIN_FLOOR;
}

/* One step of a spin: a pause, and every SPIN_YIELD_EVERY-th step a
 * sched_yield instead.  With more runnable processes than CPUs the process
 * we wait for may be queued behind us on our own CPU: pausing only delays
 * it, yielding lets it run; with nothing else queued the call returns at
 * once (measured: a Semaphore ping-pong between unpinned processes on a
 * loaded 2-CPU machine went from slower than multiprocessing's to faster). */
#define SPIN_YIELD_EVERY 16u
static inline void spin_step(uint32_t i)
{
    if ((i + 1) % SPIN_YIELD_EVERY == 0)
        sched_yield();
    else
        cpu_relax();
}

#endif
