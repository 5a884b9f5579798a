/*
 * Process-shared lock, semaphore and event (csrc/sync.h).
 *
 * The word protocol is the classic three-state futex mutex generalised
 * ("Futexes Are Tricky", mutex 2): a waiter sets CONTENDED before it sleeps
 * (compare-and-swap from the state it saw, so a change in between makes it
 * retry instead of sleeping), and whoever changes the state clears CONTENDED
 * in the same atomic step and, if it was set, wakes.  A waiter woken from
 * sleep takes the lock or a unit *with* CONTENDED set, since other sleepers
 * may remain: the next release then wakes one of them.  No wake-up is lost:
 * FUTEX_WAIT sleeps only while the word still equals the value with
 * CONTENDED that the waiter stored, and every change of state rewrites it.
 * A waiter that died asleep costs at most one spare wake-up: CONTENDED is
 * cleared by the next change of state, and set again only by live waiters.
 *
 * Lock words hold the holder's pid (a lock may be released by any thread or
 * process, as multiprocessing's can, so it is owned by a process, not a
 * thread).  The holder's full identity (pid and start time, so a recycled
 * pid does not keep a dead holder "alive") follows in `holder`; a waiter that
 * finds the word's pid dead takes the lock over with one CAS of the word and
 * is told (RIP_SYNC_OWNER_DIED).
 *
 * Every value read from the segment is checked before use: a lock word
 * above PID_MAX_LIMIT or a semaphore value above its bound is
 * RIP_SYNC_CORRUPT at attach time, a semaphore never counts past its bound,
 * and no operation indexes memory by a value it read.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "atomics.h"
#include "ring_internal.h" /* rip_self_owner, rip_owner_alive, rip_pid_alive */
#include "sync.h"
#include "sync_spin.h"

#define C RIP_SYNC_CONTENDED
#define VALUE(w) ((w) & RIP_SYNC_VALUE_MASK)

_Static_assert(sizeof(struct rip_sync) <= 4096, "a sync segment is one page");

/* -- sleeping on the word ------------------------------------------------- */
#if defined(RINGIPC_WAIT_SEM)
/* Where futexes are missing: a process-shared semaphore is the doorbell.  A
 * wake posts once per registered sleeper (at most), so a waiter that wakes
 * for nothing re-checks and sleeps again; `sleepers` counts registrations. */
static rip_sync_status sleep_on(struct rip_sync *s, uint32_t expected, const struct timespec *deadline)
{
    a_fetch_add(&s->sleepers, 1, SEQ_CST);
    int rc = 0;
    if (a_load(&s->word, SEQ_CST) == expected)
        rc = deadline ? sem_clockwait(&s->sem, CLOCK_MONOTONIC, deadline) : sem_wait(&s->sem);
    a_fetch_sub(&s->sleepers, 1, SEQ_CST);
    return rc != 0 && errno == ETIMEDOUT ? RIP_SYNC_TIMEOUT : RIP_SYNC_OK;
}

static void wake(struct rip_sync *s, int all)
{
    int pending = 0;
    uint32_t sleepers = a_load(&s->sleepers, SEQ_CST);
    if (sem_getvalue(&s->sem, &pending) != 0)
        pending = 0;
    for (uint32_t i = pending < 0 ? 0 : (uint32_t)pending; i < (all ? sleepers : 1u) && i < sleepers + 1; i++)
        sem_post(&s->sem);
}

static int init_backend(struct rip_sync *s) { return sem_init(&s->sem, 1, 0); }
#else
#include <linux/futex.h>
#include <sys/syscall.h>

static rip_sync_status sleep_on(struct rip_sync *s, uint32_t expected, const struct timespec *deadline)
{
    /* Shared futex (the word is in memory other processes map); BITSET for an
     * absolute CLOCK_MONOTONIC deadline. */
    long rc = syscall(SYS_futex, (uint32_t *)&s->word, FUTEX_WAIT_BITSET, expected, deadline, NULL,
                      FUTEX_BITSET_MATCH_ANY);
    return rc != 0 && errno == ETIMEDOUT ? RIP_SYNC_TIMEOUT : RIP_SYNC_OK;
}

static void wake(struct rip_sync *s, int all)
{
    syscall(SYS_futex, (uint32_t *)&s->word, FUTEX_WAKE, all ? INT_MAX : 1, NULL, NULL, 0);
}

static int init_backend(struct rip_sync *s) { return 0; }
#endif

/* Marks the word contended if it still reads `seen` and sleeps while it
 * stays so.  Returns TIMEOUT only when the deadline passed. */
static rip_sync_status wait_while(struct rip_sync *s, uint32_t seen, const struct timespec *deadline)
{
    if (!(seen & C) && !a_cas(&s->word, &seen, seen | C, ACQ_REL, RLX))
        return RIP_SYNC_OK; /* it changed meanwhile: look again */
    return sleep_on(s, seen | C, deadline);
}

/* -- the segment ---------------------------------------------------------- */
uint64_t rip_sync_segment_size(void) { return 4096; }

int rip_sync_format(void *base, uint64_t size, uint32_t kind, uint32_t value, uint32_t max_value, uint32_t flags,
                    int32_t creator_pid)
{
    struct rip_sync *s = base;
    if (size < sizeof *s || kind < RIP_SYNC_LOCK || kind > RIP_SYNC_EVENT || value > RIP_SYNC_VALUE_MASK ||
        max_value > RIP_SYNC_VALUE_MASK || value > max_value || (flags & ~RIP_SYNC_FLAG_UNDO) ||
        (flags && kind != RIP_SYNC_SEMAPHORE))
        return -1;
    memset(s, 0, sizeof *s);
    s->abi_version = RIP_SYNC_ABI_VERSION;
    s->kind = kind;
    s->creator_pid = creator_pid;
    s->max_value = max_value;
    s->flags = flags;
    a_store(&s->word, value, RLX);
    if (init_backend(s) != 0)
        return -1;
    /* The magic last, with release: a process that attaches by name and sees
     * it sees a formatted segment. */
    a_store((_Atomic uint64_t *)&s->magic, RIP_SYNC_MAGIC, REL);
    return 0;
}

rip_sync_status rip_sync_attach(void *base, uint64_t size, uint32_t kind, struct rip_sync **sync, const char **why)
{
    struct rip_sync *s = base;
    *why = NULL;
    if (size < sizeof *s) {
        *why = "segment too small for a synchronisation primitive";
        return RIP_SYNC_CORRUPT;
    }
    if (a_load((_Atomic uint64_t *)&s->magic, ACQ) != RIP_SYNC_MAGIC) {
        *why = "not a ringipc synchronisation primitive (bad magic)";
        return RIP_SYNC_CORRUPT;
    }
    if (s->abi_version != RIP_SYNC_ABI_VERSION) {
        *why = "made by an incompatible ringipc version";
        return RIP_SYNC_CORRUPT;
    }
    if (s->kind != kind) {
        *why = "a different kind of primitive";
        return RIP_SYNC_CORRUPT;
    }
    if ((s->flags & ~RIP_SYNC_FLAG_UNDO) || (s->flags && kind != RIP_SYNC_SEMAPHORE)) {
        *why = "unknown flags";
        return RIP_SYNC_CORRUPT;
    }
    uint32_t value = VALUE(a_load(&s->word, ACQ));
    /* (Every event word is valid: a flag and a count.) */
    if ((kind == RIP_SYNC_LOCK && value > RIP_SYNC_PID_LIMIT) ||
        (kind == RIP_SYNC_SEMAPHORE && (s->max_value > RIP_SYNC_VALUE_MASK || value > s->max_value))) {
        *why = "state word out of range";
        return RIP_SYNC_CORRUPT;
    }
    *sync = s;
    return RIP_SYNC_OK;
}

/* -- this process's identity, without a system call per acquire ----------- */
/* getpid() is a system call (glibc stopped caching it), and the uncontended
 * lock must make none: the pid and owner word are cached, and a fork handler
 * clears the cache in the child. */
static _Atomic uint32_t cached_pid;
static _Atomic uint64_t cached_owner;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forget_identity(void)
{
    a_store(&cached_pid, 0, RLX);
    a_store(&cached_owner, 0, RLX);
}

static void install_atfork(void) { pthread_atfork(NULL, NULL, forget_identity); }

static uint32_t self_pid(void)
{
    uint32_t pid = a_load(&cached_pid, RLX);
    if (unlikely(pid == 0)) {
        pthread_once(&atfork_once, install_atfork);
        pid = (uint32_t)getpid();
        a_store(&cached_owner, rip_self_owner(), RLX);
        a_store(&cached_pid, pid, RLX);
    }
    return pid;
}

/* -- lock ----------------------------------------------------------------- */
static void note_holder(struct rip_sync *s)
{
    /* Release: a waiter that reads this identity reads it after our CAS.
     * (self_pid() ran first, so the owner word is cached.) */
    a_store(&s->holder, a_load(&cached_owner, RLX), REL);
}

rip_sync_status rip_lock_try(struct rip_sync *s)
{
    uint32_t expected = 0;
    /* Acquire: what the previous holder wrote under the lock is visible. */
    if (!a_cas(&s->word, &expected, self_pid(), ACQ, RLX))
        return RIP_SYNC_BUSY;
    note_holder(s);
    return RIP_SYNC_OK;
}

/* -- adaptive spinning: the budget is csrc/sync_spin.h ------------------ */
void rip_sync_spin_init(struct rip_sync_spin *spin)
{
    spin->budget = 0;
    spin->spins = 0;
}

rip_sync_status rip_lock_spin(struct rip_sync *s, struct rip_sync_spin *spin)
{
    uint32_t me = self_pid();
    uint32_t limit = spin_limit(spin);
    if (limit == 0)
        return RIP_SYNC_BUSY;
    for (uint32_t i = 0; i < limit; i++) {
        /* Read-only while held (the line stays shared in both caches); a CAS
         * only once it reads free, as 0 or with CONTENDED cleared by the
         * release.  Taken without CONTENDED: the release woke a sleeper if
         * there was one, and that one marks the word again if it loses. */
        uint32_t seen = a_load(&s->word, RLX);
        if (seen == 0) {
            if (a_cas(&s->word, &seen, me, ACQ, RLX)) {
                note_holder(s);
                spin_paid(spin, 1, limit);
                return RIP_SYNC_OK;
            }
        } else if (VALUE(seen) == me) {
            return RIP_SYNC_BUSY; /* one of our threads holds it: no point, and not with the GIL */
        }
        spin_step(i);
    }
    spin_paid(spin, 0, limit);
    return RIP_SYNC_BUSY;
}

rip_sync_status rip_lock_wait(struct rip_sync *s, const struct timespec *deadline)
{
    uint32_t seen = a_load(&s->word, RLX);
    if (VALUE(seen) != 0) {
        rip_sync_status st = wait_while(s, seen, deadline);
        if (st == RIP_SYNC_TIMEOUT)
            return st;
        seen = a_load(&s->word, RLX);
        if (VALUE(seen) != 0)
            return RIP_SYNC_BUSY;
    }
    /* Taken with CONTENDED: other sleepers may remain (see the top). */
    if (!a_cas(&s->word, &seen, self_pid() | C, ACQ, RLX))
        return RIP_SYNC_BUSY;
    note_holder(s);
    return RIP_SYNC_OK;
}

int32_t rip_lock_holder_pid(struct rip_sync *s) { return (int32_t)VALUE(a_load(&s->word, RLX)); }

rip_sync_status rip_lock_take_from_dead(struct rip_sync *s)
{
    uint32_t seen = a_load(&s->word, ACQ);
    uint32_t pid = VALUE(seen);
    if (pid == 0 || pid > RIP_SYNC_PID_LIMIT)
        return RIP_SYNC_BUSY;
    uint64_t holder = a_load(&s->holder, ACQ);
    /* The identity may lag the word (stored after the CAS): trust its start
     * time only when it names the word's pid, else ask about the pid alone. */
    int alive = RIP_OWNER_PID(holder) == pid ? rip_owner_alive(holder) : rip_pid_alive((int32_t)pid, 0);
    if (alive)
        return RIP_SYNC_BUSY;
    /* The CAS fails if the dead holder's word changed meanwhile (another
     * waiter took over first, or a release by another process). */
    if (!a_cas(&s->word, &seen, self_pid() | C, ACQ, RLX))
        return RIP_SYNC_BUSY;
    note_holder(s);
    return RIP_SYNC_OWNER_DIED;
}

rip_sync_status rip_lock_release(struct rip_sync *s)
{
    uint32_t seen = a_load(&s->word, RLX);
    do {
        if (VALUE(seen) == 0)
            return RIP_SYNC_NOT_HELD;
    } while (!a_cas(&s->word, &seen, 0, REL, RLX)); /* release: the protected writes first */
    if (seen & C)
        wake(s, 0);
    return RIP_SYNC_OK;
}

/* -- semaphore ------------------------------------------------------------ */
/* This process's undo slot (taking a free one on first use), or NULL when
 * all are taken: its units are then not given back if it dies. */
static struct rip_sync_undo *undo_slot(struct rip_sync *s)
{
    self_pid(); /* caches the owner word */
    uint64_t me = a_load(&cached_owner, RLX);
    for (uint32_t i = 0; i < RIP_SYNC_UNDO_SLOTS; i++)
        if (a_load(&s->undo[i].owner, RLX) == me)
            return &s->undo[i];
    for (uint32_t i = 0; i < RIP_SYNC_UNDO_SLOTS; i++) {
        uint64_t free_word = 0;
        if (a_cas(&s->undo[i].owner, &free_word, me, ACQ_REL, RLX)) {
            a_store(&s->undo[i].held, 0, REL);
            return &s->undo[i];
        }
    }
    return NULL;
}

/* Units are counted as held after the value's CAS and uncounted before the
 * release's: a death between the two steps loses that unit (the semaphore
 * counts one less) rather than giving back one never taken, which would let
 * one more process in than the count allows. */
static void note_taken(struct rip_sync *s)
{
    struct rip_sync_undo *slot;
    if ((s->flags & RIP_SYNC_FLAG_UNDO) && (slot = undo_slot(s)) != NULL)
        a_fetch_add(&slot->held, 1, REL);
}

rip_sync_status rip_sem_try(struct rip_sync *s)
{
    uint32_t seen = a_load(&s->word, RLX);
    while (VALUE(seen) > 0) {
        if (a_cas(&s->word, &seen, (VALUE(seen) - 1) | (seen & C), ACQ, RLX)) {
            note_taken(s);
            return RIP_SYNC_OK;
        }
    }
    return RIP_SYNC_BUSY;
}

rip_sync_status rip_sem_wait(struct rip_sync *s, const struct timespec *deadline)
{
    uint32_t seen = a_load(&s->word, RLX);
    if (VALUE(seen) == 0 && wait_while(s, seen, deadline) == RIP_SYNC_TIMEOUT)
        return RIP_SYNC_TIMEOUT;
    return rip_sem_try(s);
}

rip_sync_status rip_sem_spin(struct rip_sync *s, struct rip_sync_spin *spin)
{
    uint32_t limit = spin_limit(spin);
    for (uint32_t i = 0; i < limit; i++) {
        if (VALUE(a_load(&s->word, RLX)) > 0 && rip_sem_try(s) == RIP_SYNC_OK) {
            spin_paid(spin, 1, limit);
            return RIP_SYNC_OK;
        }
        spin_step(i);
    }
    if (limit)
        spin_paid(spin, 0, limit);
    return RIP_SYNC_BUSY;
}

/* Adds n units unless that passes the bound; wakes every sleeper. */
static rip_sync_status sem_add(struct rip_sync *s, uint32_t n)
{
    uint32_t seen = a_load(&s->word, RLX);
    do {
        if (n > s->max_value || VALUE(seen) > s->max_value - n)
            return RIP_SYNC_OVERFLOW;
    } while (!a_cas(&s->word, &seen, VALUE(seen) + n, REL, RLX));
    /* All sleepers, not one: a unit woken for may be taken by a process
     * that never slept, and a second release before the woken one runs
     * finds CONTENDED already cleared.  Those that lose set it again. */
    if (seen & C)
        wake(s, 1);
    return RIP_SYNC_OK;
}

rip_sync_status rip_sem_release(struct rip_sync *s, uint32_t n)
{
    uint32_t value = VALUE(a_load(&s->word, RLX));
    if (n > s->max_value || value > s->max_value - n)
        return RIP_SYNC_OVERFLOW; /* checked again by sem_add; here so the undo count stays right */
    struct rip_sync_undo *slot;
    if ((s->flags & RIP_SYNC_FLAG_UNDO) && (slot = undo_slot(s)) != NULL) {
        uint32_t held = a_load(&slot->held, RLX);
        a_store(&slot->held, held - (held < n ? held : n), REL); /* units released that another process took: not ours */
    }
    return sem_add(s, n);
}

uint32_t rip_sem_value(struct rip_sync *s) { return VALUE(a_load(&s->word, RLX)); }

uint32_t rip_sem_recover(struct rip_sync *s)
{
    uint32_t given = 0;
    if (!(s->flags & RIP_SYNC_FLAG_UNDO))
        return 0;
    for (uint32_t i = 0; i < RIP_SYNC_UNDO_SLOTS; i++) {
        struct rip_sync_undo *slot = &s->undo[i];
        uint64_t owner = a_load(&slot->owner, ACQ);
        if (owner == 0 || owner == RIP_SYNC_UNDO_RECLAIMING || rip_owner_alive(owner))
            continue;
        /* Marked, not freed, while we work: a process taking the slot
         * meanwhile would have its fresh count taken with the dead one's. */
        if (!a_cas(&slot->owner, &owner, RIP_SYNC_UNDO_RECLAIMING, ACQ_REL, RLX))
            continue;
        uint32_t held = atomic_exchange_explicit(&slot->held, 0, ACQ_REL);
        while (held > 0) { /* bounded: stop at the bound rather than fail */
            uint32_t value = VALUE(a_load(&s->word, RLX));
            uint32_t room = s->max_value - (value < s->max_value ? value : s->max_value);
            uint32_t n = held < room ? held : room;
            if (n == 0 || sem_add(s, n) == RIP_SYNC_OK) {
                given += n;
                break;
            }
        }
        a_store(&slot->owner, 0, REL);
    }
    return given;
}

/* -- event ---------------------------------------------------------------- */
/* Bit 0 is the flag; bits 1-30 count the times it was set, so that a waiter
 * woken by a set() that a clear() undid before it ran still returns True
 * (as threading.Event's wait does). */
#define EVENT_FLAG 1u
#define EVENT_GEN(w) (((w) & RIP_SYNC_VALUE_MASK) >> 1)

void rip_event_set(struct rip_sync *s)
{
    uint32_t seen = a_load(&s->word, RLX);
    do {
        if (seen & EVENT_FLAG)
            return;
    } while (!a_cas(&s->word, &seen, (((EVENT_GEN(seen) + 1) << 1) & RIP_SYNC_VALUE_MASK) | EVENT_FLAG, ACQ_REL, RLX));
    if (seen & C)
        wake(s, 1); /* every waiter returns */
}

void rip_event_clear(struct rip_sync *s)
{
    uint32_t seen = a_load(&s->word, RLX);
    /* Only the flag: CONTENDED is never set together with it. */
    while ((seen & EVENT_FLAG) && !a_cas(&s->word, &seen, seen & ~EVENT_FLAG, ACQ_REL, RLX)) {
    }
}

int rip_event_is_set(struct rip_sync *s) { return (a_load(&s->word, ACQ) & EVENT_FLAG) != 0; }

rip_sync_status rip_event_wait(struct rip_sync *s, const struct timespec *deadline, uint32_t *since)
{
    uint32_t seen = a_load(&s->word, ACQ);
    if (*since == UINT32_MAX)
        *since = EVENT_GEN(seen);
    if ((seen & EVENT_FLAG) || EVENT_GEN(seen) != *since)
        return RIP_SYNC_OK;
    if (wait_while(s, seen, deadline) == RIP_SYNC_TIMEOUT)
        return RIP_SYNC_TIMEOUT;
    seen = a_load(&s->word, ACQ);
    return (seen & EVENT_FLAG) || EVENT_GEN(seen) != *since ? RIP_SYNC_OK : RIP_SYNC_BUSY;
}

rip_sync_status rip_event_spin(struct rip_sync *s, struct rip_sync_spin *spin, uint32_t *since)
{
    uint32_t limit = spin_limit(spin);
    for (uint32_t i = 0; i < limit; i++) {
        uint32_t seen = a_load(&s->word, ACQ);
        if (*since == UINT32_MAX)
            *since = EVENT_GEN(seen);
        if ((seen & EVENT_FLAG) || EVENT_GEN(seen) != *since) {
            spin_paid(spin, 1, limit);
            return RIP_SYNC_OK;
        }
        spin_step(i);
    }
    if (limit)
        spin_paid(spin, 0, limit);
    return RIP_SYNC_BUSY;
}
