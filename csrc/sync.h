/*
 * Process-shared synchronisation primitives in a small shared-memory segment:
 * a lock whose dead holder is detected and replaced, a (bounded) counting
 * semaphore, and an event.  One 32-bit word carries each primitive's state,
 * so that the uncontended paths are one CAS or exchange and no system call;
 * sleepers wait on that word with a futex (or a process-shared POSIX
 * semaphore where futexes are missing).  See docs/sync.md.
 */
#ifndef RINGIPC_SYNC_H
#define RINGIPC_SYNC_H

#include <semaphore.h>
#include <stdint.h>
#include <time.h>

#define RIP_SYNC_MAGIC 0x434e595343504952ull /* "RIPCSYNC" little-endian */
#define RIP_SYNC_ABI_VERSION 2u /* 2: semaphores' undo table */

enum rip_sync_kind { RIP_SYNC_LOCK = 1, RIP_SYNC_SEMAPHORE = 2, RIP_SYNC_EVENT = 3 };

/* The word's top bit: somebody may be asleep on it (set by a waiter before it
 * sleeps, cleared by whoever changes the state, who then wakes). */
#define RIP_SYNC_CONTENDED 0x80000000u
#define RIP_SYNC_VALUE_MASK 0x7fffffffu
/* Linux pids never exceed PID_MAX_LIMIT (2^22): a lock word above it is corrupt. */
#define RIP_SYNC_PID_LIMIT (1u << 22)

/* A semaphore made with undo counts, per process, the units it holds, so
 * that a waiter can give back those of a process that died (System V's
 * SEM_UNDO, done by the survivors instead of the kernel). */
#define RIP_SYNC_FLAG_UNDO 1u
#define RIP_SYNC_UNDO_SLOTS 64u
#define RIP_SYNC_UNDO_RECLAIMING UINT64_MAX /* owner word while a survivor gives a dead one's units back */

struct rip_sync_undo {
    _Atomic uint64_t owner;  /* RIP_OWNER of the process, 0 if free */
    _Atomic uint32_t held;   /* units it acquired and has not released; written by the owner only */
    uint32_t reserved;
};

struct rip_sync {
    uint64_t magic;
    uint32_t abi_version;
    uint32_t kind;
    int32_t creator_pid;
    uint32_t max_value;                   /* semaphore: the bound; RIP_SYNC_VALUE_MASK when unbounded */
    uint32_t flags;                       /* RIP_SYNC_FLAG_UNDO */
    uint32_t reserved;
    _Alignas(64) _Atomic uint32_t word;   /* lock: holder pid; semaphore: value; event: set count << 1 | flag (| CONTENDED) */
    _Atomic uint32_t sleepers;            /* semaphore backend only: how many posts a wake-all owes */
    _Atomic uint64_t holder;              /* lock: RIP_OWNER (pid, start time) of the holder, stored after word */
    _Alignas(64) sem_t sem;               /* semaphore backend only */
    _Alignas(64) struct rip_sync_undo undo[RIP_SYNC_UNDO_SLOTS];
};

typedef enum {
    RIP_SYNC_OK = 0,
    RIP_SYNC_BUSY = 1,        /* not available now */
    RIP_SYNC_TIMEOUT = 2,     /* the slice's deadline passed */
    RIP_SYNC_OWNER_DIED = 3,  /* acquired from a holder that died holding it */
    RIP_SYNC_NOT_HELD = 4,    /* release of a lock nobody holds */
    RIP_SYNC_OVERFLOW = 5,    /* release beyond a bounded semaphore's bound */
    RIP_SYNC_CORRUPT = 6,
} rip_sync_status;

uint64_t rip_sync_segment_size(void);
int rip_sync_format(void *base, uint64_t size, uint32_t kind, uint32_t value, uint32_t max_value, uint32_t flags,
                    int32_t creator_pid);
/* Validates the header and the state word; on RIP_SYNC_CORRUPT *why says what is wrong. */
rip_sync_status rip_sync_attach(void *base, uint64_t size, uint32_t kind, struct rip_sync **sync, const char **why);

/* Lock.  try: one CAS.  wait: sleep until the word changes or the absolute
 * CLOCK_MONOTONIC deadline, then try again (OK when acquired).  take_from_dead:
 * the slow path a waiter runs now and then: if the holder is dead, the lock
 * is taken over (RIP_SYNC_OWNER_DIED), else RIP_SYNC_BUSY. */
rip_sync_status rip_lock_try(struct rip_sync *s);
/* Adaptive spinning before a waiter sleeps.  A holder in another process on
 * another CPU usually releases within a microsecond or two, far sooner than
 * a futex sleep and wake-up take (and the wake-up costs the releaser a system
 * call): a waiter that watches the word that long takes the lock without
 * either.  The budget (per handle, in this process's memory) adapts as the
 * ring's does (csrc/ring_wait.c): a spin that pays restores it in full, one
 * that ends in sleep halves it down to RIP_SYNC_SPIN_FLOOR, and every
 * RIP_SYNC_SPIN_PROBE_EVERY-th spin is full again to notice when spinning
 * pays once more.  With more runnable processes than CPUs the holder is
 * often not running, so the budget falls and waiters sleep almost at once. */
#ifndef RIP_SYNC_SPIN_NS
#define RIP_SYNC_SPIN_NS 10000u    /* a full spin: about a futex sleep and wake-up's cost */
#endif
#define RIP_SYNC_SPIN_FLOOR 16u    /* pause iterations */
#define RIP_SYNC_SPIN_PROBE_EVERY 16u
struct rip_sync_spin {
    uint32_t budget; /* pause iterations; 0: a full spin */
    uint32_t spins;
};
void rip_sync_spin_init(struct rip_sync_spin *spin);
/* Spins while the lock is held by another process, taking it if it frees
 * (OK) within the budget, else BUSY.  Never spins on a lock held by this
 * process (its holder is one of our threads, which may need the GIL that
 * our caller holds) or on a machine with one CPU. */
rip_sync_status rip_lock_spin(struct rip_sync *s, struct rip_sync_spin *spin);
rip_sync_status rip_lock_wait(struct rip_sync *s, const struct timespec *deadline);
rip_sync_status rip_lock_take_from_dead(struct rip_sync *s);
rip_sync_status rip_lock_release(struct rip_sync *s);
int32_t rip_lock_holder_pid(struct rip_sync *s);

rip_sync_status rip_sem_try(struct rip_sync *s);
rip_sync_status rip_sem_wait(struct rip_sync *s, const struct timespec *deadline);
/* Spins while the value is 0, taking a unit if one appears within the
 * budget (OK), else BUSY; the budget adapts as a lock's.  Call it without
 * the GIL: the releaser may be one of this process's threads. */
rip_sync_status rip_sem_spin(struct rip_sync *s, struct rip_sync_spin *spin);
rip_sync_status rip_sem_release(struct rip_sync *s, uint32_t n);
uint32_t rip_sem_value(struct rip_sync *s);
/* Undo semaphores: gives back the units of processes that died holding
 * them (bounded by the semaphore's bound); returns how many. */
uint32_t rip_sem_recover(struct rip_sync *s);

void rip_event_set(struct rip_sync *s);
void rip_event_clear(struct rip_sync *s);
int rip_event_is_set(struct rip_sync *s);
/* *since: UINT32_MAX on a wait's first call, then left as this call set it:
 * the wait ends (OK) once the event is set or was set since the first call. */
rip_sync_status rip_event_wait(struct rip_sync *s, const struct timespec *deadline, uint32_t *since);
/* Spins (without the GIL) until the event is set or was set since, as
 * rip_event_wait's *since says (OK), or the budget runs out (BUSY). */
rip_sync_status rip_event_spin(struct rip_sync *s, struct rip_sync_spin *spin, uint32_t *since);

#endif
