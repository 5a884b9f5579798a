/*
 * ringipc's ring: the operations on a mapped segment (csrc/ring_layout.h).
 *
 * This layer never sees a Python object, never allocates and never blocks
 * except inside rip_wait_*.  Every function that reads shared memory
 * validates what it reads and reports RIP_CORRUPT instead of trusting it.
 *
 * Writing and reading are two-phase so that the caller copies (or pickles)
 * straight into / out of shared memory:
 *     rip_write_begin -> copy into desc.data -> rip_write_commit
 *     rip_read_begin  -> copy out of desc.data -> rip_read_end
 * Between the two calls the record is claimed; if the process dies there,
 * rip_recover() run by any surviving peer releases the claim.
 */
#ifndef RINGIPC_RING_H
#define RINGIPC_RING_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "ring_layout.h"

typedef enum {
    RIP_OK = 0,
    RIP_EMPTY,          /* nothing committed to read (now) */
    RIP_FULL,           /* not enough free space (now) */
    RIP_TIMEOUT,        /* a wait reached its deadline */
    RIP_INTERRUPTED,    /* a wait was interrupted by a signal */
    RIP_TOO_BIG,        /* the message can never fit: over max_message */
    RIP_CORRUPT,        /* shared memory holds values that break the ring's invariants */
    RIP_CLOSED,         /* the other side closed (and, for readers, nothing is left) */
    RIP_BUSY,           /* SPSC: another live process already holds this side */
    RIP_NO_SLOT,        /* MPMC: all RIP_MAX_SLOTS process slots are in use */
    RIP_BAD_ARGUMENT,   /* capacity or segment size out of range */
} rip_status;

/* Process-local view of a mapped segment.  Lives inside the Cython object. */
typedef struct {
    struct rip_header *hdr;
    struct rip_slot *slots;
    struct rip_meta *meta;
    unsigned char *data;
    uint64_t ncells;
    uint64_t mask;
    uint64_t max_message;       /* bytes: half the data area, so a record always fits after padding */
    int multi;                  /* MPMC */
    int32_t pid;                /* this process, refreshed after fork */
    uint64_t owner;             /* RIP_OWNER of this process (pid, start time), refreshed with pid */
    uint64_t fork_generation;   /* rip_fork_generation when pid/slot were taken */
    struct rip_slot *slot;      /* MPMC: this process's slot, or NULL */
    int is_producer;            /* SPSC: holds the producer role */
    int is_consumer;            /* SPSC: holds the consumer role */
    uint64_t cached_release;    /* producer's last view of release: spares a shared load per message */
    uint64_t cached_head;       /* consumer's last view of head, for validating record lengths */
    _Atomic uint32_t idle_wakes[2]; /* readers', writers' wake-ups in a row that found nobody asleep */
    _Atomic uint64_t skipped_seen[2]; /* waiter word at the last notify that had no wake to make */
    _Atomic uint32_t skipped_wakes[2]; /* such notifies in a row with that word unchanged */
    _Atomic uint32_t spin_budget[2]; /* readers', writers' current spin limit (csrc/ring_wait.c) */
    _Atomic uint32_t spin_waits[2];  /* waits so far, to spin in full every so often */
} rip_ring;

/* Wake-ups in a row that found nobody asleep before a handle recounts the
 * sleepers (csrc/ring_waiters.c). */
#define RIP_RECOUNT_AFTER_IDLE_WAKES 64u
/* Notifies in a row that found sleepers counted, none waiting to be woken,
 * and the waiter word unchanged, before a handle recounts: a dead sleeper's
 * registration costs at most one wake system call and this many slow-path
 * notifies (a load each) per notifying handle.  Larger than the above: a
 * live sleeper woken a moment ago looks the same until it has run, and a
 * recount asks the kernel about it. */
#define RIP_RECOUNT_AFTER_SKIPPED_WAKES 1024u

typedef struct {
    uint64_t claim;     /* first cell claimed (padding included) */
    uint64_t pos;       /* first cell of the record itself */
    uint64_t pad;       /* cells of wrap padding in front of the record */
    uint64_t length;    /* payload bytes */
    unsigned char *data;
} rip_desc;

/* Incremented in the child after fork(): handles compare it to notice they were inherited. */
extern uint64_t rip_fork_generation;

uint64_t rip_cells_for_capacity(uint64_t capacity_bytes);     /* 0 if out of range */
uint64_t rip_segment_size(uint64_t ncells);
rip_status rip_format(void *base, uint64_t segment_size, uint64_t ncells, uint32_t kind, int32_t creator_pid);
/* On RIP_CORRUPT, *why names what was wrong (a static string). */
rip_status rip_attach(rip_ring *ring, void *base, uint64_t segment_size, const char **why);

rip_status rip_write_begin(rip_ring *ring, uint64_t length, rip_desc *desc);
void rip_write_commit(rip_ring *ring, const rip_desc *desc, int notify);
/* Gives up a claim without publishing a message (readers skip it). */
void rip_write_abort(rip_ring *ring, const rip_desc *desc);
rip_status rip_read_begin(rip_ring *ring, rip_desc *desc);
void rip_read_end(rip_ring *ring, const rip_desc *desc, int notify);
/* rip_read_end in two halves, for batches: read_done marks one message read
 * (its cells are not yet reusable); read_publish hands the space of every
 * message read so far back to producers.  Only a consumer that has done at
 * least one read_done calls read_publish. */
void rip_read_done(rip_ring *ring, const rip_desc *desc);
void rip_read_publish(rip_ring *ring);

/* One message of a batch: its bytes and length. */
typedef struct {
    const void *data;
    uint64_t length;
} rip_msg;

/* At most this many messages go into one batch claim. */
#define RIP_BATCH_MAX 64u

/* Appends msgs[0], msgs[1], ... with one claim and, for all of them, one
 * publication (csrc/ring_batch.c): as many as fit now, before the end of the
 * data area and up to RIP_BATCH_MAX.  RIP_OK with *written >= 1; otherwise
 * (RIP_FULL, RIP_TOO_BIG for msgs[0], RIP_CLOSED, ...) *written == 0.  The
 * caller wakes readers (rip_notify_readers) when it wants to. */
rip_status rip_write_many(rip_ring *ring, const rip_msg *msgs, size_t n, size_t *written);
/* Wake every sleeper of one direction if any is registered (batched notify). */
void rip_notify_readers(rip_ring *ring);
void rip_notify_writers(rip_ring *ring);

int rip_readable(rip_ring *ring);
int rip_writable(rip_ring *ring, uint64_t length);
/* Readers' claim position: changes whenever any process takes a message. */
uint64_t rip_read_position(rip_ring *ring);
uint64_t rip_used_bytes(rip_ring *ring);
/* Sleep until readable/writable may have changed, the absolute CLOCK_MONOTONIC
 * deadline passes, or a signal arrives; spins `spin_iterations` first. */
rip_status rip_wait_readable(rip_ring *ring, const struct timespec *deadline, uint32_t spin_iterations);
rip_status rip_wait_writable(rip_ring *ring, uint64_t length, const struct timespec *deadline, uint32_t spin_iterations);
/* A sleeper is counted in its handle's slot, so a handle takes one (in either
 * kind of ring) before it first sleeps; rip_wait_* do this themselves, but
 * threads sharing a handle must not race to take it: callers that wait from
 * several threads call this first, serialised as for read/write.
 * RIP_NO_SLOT if all RIP_MAX_SLOTS are held by live handles. */
rip_status rip_ensure_wait_slot(rip_ring *ring);
/* Lowers the header's sleeper counts to what live processes' slots account
 * for, taking back the registrations of processes that died asleep. */
void rip_recount_sleepers(rip_ring *ring);

/* Doorbells (csrc/ring_bell.c): a datagram to the abstract AF_UNIX socket
 * "\0" RIP_BELL_PREFIX "<name as 16 hex digits>" when the ring becomes
 * readable (writer = 0) or writable (writer = 1) while armed.  install
 * records `name` in this handle's slot (0 removes it; RIP_BUSY if the handle
 * has a bell in that direction already); the caller holds a wait slot
 * (rip_ensure_wait_slot).  arm sets the bell for one ring and
 * returns 1 if the ring is ready already (readable/writable for `length`
 * bytes, or the other side closed), 0 if the bell will ring, -1 without a
 * slot.  A writer's length UINT64_MAX arms for the next release whatever
 * room there is (only closing counts as ready).  Ringing disarms; disarm takes back an arm nobody rang. */
#define RIP_BELL_PREFIX "ringipc-bell-"
rip_status rip_bell_install(rip_ring *ring, int writer, uint64_t name);
int rip_bell_arm(rip_ring *ring, int writer, uint64_t length);
/* Busy-poll the ring for up to spin_ns before arming a bell (ring_wait.c):
 * 1 once ready as rip_bell_arm counts it, 0 when the time is up. */
int rip_spin_ready(rip_ring *ring, int writer, uint64_t length, uint64_t spin_ns);
void rip_bell_disarm(rip_ring *ring, int writer);
/* Test hook: the descriptor of this process's bell-sending socket, or -1. */
int rip_bell_sender_fd(void);

void rip_close_side(rip_ring *ring, uint32_t flag);
uint32_t rip_flags(rip_ring *ring);
void rip_release_roles(rip_ring *ring);

/* Finds claims left by dead processes and releases them; *recovered counts them. */
rip_status rip_recover(rip_ring *ring, uint32_t *recovered);
/* Whether `pid` runs and is the process that started at `start` (low 32 bits
 * of its start time in clock ticks; 0: unknown, the pid alone decides).
 * Errs towards alive when it cannot tell (csrc/ring_liveness.c). */
int rip_pid_alive(int32_t pid, uint32_t start);
/* The start stamp rip_pid_alive compares: low 32 bits of field 22 of
 * /proc/<pid>/stat, or 0 if unreadable. */
uint32_t rip_process_start(int32_t pid);
/* 1 in RINGIPC_CHAOS builds (csrc/ring_internal.h), 0 otherwise. */
int rip_chaos_build(void);
/* RINGIPC_CHAOS builds, for tests: the next batch write of this process
 * sends itself SIGSTOP just before storing its index-th tag (index tags
 * published), so a test can kill it exactly there.  -1 disarms.  Returns 0
 * in other builds. */
int rip_chaos_stop_at_batch_tag(long index);
/* Test hook: counts (+1) or uncounts (-1) a recovery running in this
 * process, as another thread inside rip_recover would. */
void rip_debug_count_recovery(int delta);
/* "futex" or "sem": the wait backend this build was compiled with. */
const char *rip_wait_backend_name(void);

#endif
