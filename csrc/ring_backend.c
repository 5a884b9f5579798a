/*
 * The wait backend: sleeping on a shared 32-bit word and waking its sleepers.
 * A futex (Linux, the default) or a process-shared POSIX semaphore (other
 * systems, or RINGIPC_WAIT=sem).  Nothing here knows the ring's protocol:
 * ring_wait.c decides when to sleep, ring_release.c when to wake.
 */
#include <errno.h>
#include <limits.h>

#include "ring_internal.h"

/* Both backends take absolute CLOCK_MONOTONIC deadlines; the ring's and the
 * topics' wait loops ask here, so the clock is chosen in one place. */
int rip_deadline_passed(const struct timespec *deadline)
{
    struct timespec now;
    if (deadline == NULL)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec || (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

#if defined(RINGIPC_WAIT_SEM)
#include <semaphore.h>

int rip_backend_init(sem_t *sem) { return sem_init(sem, 1, 0); }

const char *rip_wait_backend_name(void) { return "sem"; }

rip_status rip_backend_wait(_Atomic uint32_t *word, sem_t *sem, uint32_t expected, const struct timespec *deadline)
{
    int rc = deadline ? sem_clockwait(sem, CLOCK_MONOTONIC, deadline) : sem_wait(sem);
    if (rc == 0)
        return RIP_OK;
    if (errno == ETIMEDOUT)
        return RIP_TIMEOUT;
    if (errno == EINTR)
        return RIP_INTERRUPTED;
    return RIP_OK; /* unexpected: the caller re-checks the ring either way */
}

int rip_backend_wake(_Atomic uint32_t *word, sem_t *sem, uint32_t waiters)
{
    int value = 0;
    /* Post only up to the number of waiters, so posts for waiters that found
     * work without sleeping cannot pile up without bound. */
    if (sem_getvalue(sem, &value) != 0)
        value = 0;
    for (int i = value < 0 ? 0 : value; (uint32_t)i < waiters; i++)
        sem_post(sem);
    /* A post left from an earlier wake-up means nobody has taken it since. */
    return value <= 0;
}

#else /* futex */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

int rip_backend_init(sem_t *sem) { return 0; }

const char *rip_wait_backend_name(void) { return "futex"; }

rip_status rip_backend_wait(_Atomic uint32_t *word, sem_t *sem, uint32_t expected, const struct timespec *deadline)
{
    /* Shared (no FUTEX_PRIVATE_FLAG): the word is in memory mapped by other
     * processes.  WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so
     * repeated slices never drift. */
    long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, expected, deadline, NULL,
                      FUTEX_BITSET_MATCH_ANY);
    if (rc == 0 || errno == EAGAIN)
        return RIP_OK;
    if (errno == ETIMEDOUT)
        return RIP_TIMEOUT;
    if (errno == EINTR)
        return RIP_INTERRUPTED;
    return RIP_OK;
}

int rip_backend_wake(_Atomic uint32_t *word, sem_t *sem, uint32_t waiters)
{
    /* Wake all: each waiter re-checks its own condition (MPMC waiters may wait
     * for different sizes), and waking one could pick a waiter about to time out. */
    long woken = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    return woken != 0; /* an error is not evidence that nobody sleeps */
}
#endif
