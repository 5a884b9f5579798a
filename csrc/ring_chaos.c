/*
 * The chaos points of RINGIPC_CHAOS builds (csrc/ring_internal.h): a random
 * pause between protocol steps, so that the stress tests meet interleavings
 * that a normal build shows once in millions of messages.
 */
#include "ring_internal.h"

#if defined(RINGIPC_CHAOS)
#include <sched.h>
#include <signal.h>
#include <unistd.h>

static _Thread_local uint64_t chaos_state;
static _Thread_local pid_t chaos_pid = 0;

void rip_chaos_point(void)
{
    /* Seeded per thread and again in a forked child (which inherits its
     * parent's state): processes must not pause in step.  The pid, not the
     * ring's fork generation: the topic extension links this file without
     * ring_segment.c, and chaos builds can afford a getpid() per point. */
    pid_t pid = getpid();
    if (chaos_pid != pid) {
        chaos_pid = pid;
        chaos_state = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&chaos_state ^ 0x9e3779b97f4a7c15ull;
    }
    /* xorshift64: cheap, and any stream will do */
    chaos_state ^= chaos_state << 13;
    chaos_state ^= chaos_state >> 7;
    chaos_state ^= chaos_state << 17;
    uint32_t roll = (uint32_t)(chaos_state >> 40) & 1023u;
    if (roll < 8) {
        sched_yield(); /* lets another process run inside our step */
    } else if (roll < 64) {
        for (uint32_t i = (roll & 63u) * 16u; i > 0; i--)
            cpu_relax(); /* a short stall: widens the window on another core */
    }
}

static _Atomic long stop_at_batch_tag = -1;

void rip_chaos_batch_tag(size_t index)
{
    long stop = a_load(&stop_at_batch_tag, RLX);
    if (stop >= 0 && (size_t)stop == index) {
        a_store(&stop_at_batch_tag, -1, RLX);
        raise(SIGSTOP); /* the test that armed us kills us here */
        return;
    }
    rip_chaos_point();
}

int rip_chaos_stop_at_batch_tag(long index)
{
    a_store(&stop_at_batch_tag, index < 0 ? -1 : index, RLX);
    return 1;
}

int rip_chaos_build(void) { return 1; }
#else
int rip_chaos_stop_at_batch_tag(long index)
{
    (void)index;
    return 0;
}

int rip_chaos_build(void) { return 0; }
#endif
