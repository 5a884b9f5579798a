/*
 * ringipc topics: a broadcast ring in POSIX shared memory.
 *
 * Publishers append records under a publisher lock (an owner word, taken over
 * if its holder dies); every subscriber reads every record with its own
 * position, so reads are not destructive.  Layout, memory orders and the
 * validation rule are described in docs/topic.md; every offset is pinned
 * below with a _Static_assert.
 *
 *   0        4 KiB            12 KiB           12 KiB + M        end
 *   +--------+----------------+----------------+-----------------+
 *   | header | slot table     | record meta    | data cells      |
 *   | 4 KiB  | 128 x 64 B     | ncells x 32 B  | ncells x 64 B   |
 *   +--------+----------------+----------------+-----------------+
 *                               M = ncells*32 rounded up to 4 KiB
 */
#ifndef RINGIPC_TOPIC_H
#define RINGIPC_TOPIC_H

#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "atomics.h"

#define TP_MAGIC 0x31504f54474e4952ULL /* "RINGTOP1" as little-endian bytes */
#define TP_ABI_VERSION 2u /* 2: doorbells (names in slots, armed bitmaps in header line 8) */
#define TP_LINE 64u
#define TP_PAGE 4096u
#define TP_CELL 64u
#define TP_CELL_SHIFT 6u
#define TP_MAX_SLOTS 128u        /* publishers + subscribers open at once */
#define TP_MIN_CELLS 4u
#define TP_MAX_CELLS (1ull << 34)

/* Policies, fixed at creation. */
#define TP_LOSSLESS 1u    /* publishers wait for the slowest live subscriber */
#define TP_DROP_OLDEST 2u /* publishers never wait; lapped subscribers skip, counting */
#define TP_LATEST 3u      /* subscribers read the newest complete message */

/* Record states in a tag: tag = (position << 2) | state. */
#define TP_COMMITTED 1u
#define TP_PADDING 2u
#define TP_TAG(pos, state) (((uint64_t)(pos) << 2) | (uint64_t)(state))

/* Slot roles. */
#define TP_ROLE_FREE 0u
#define TP_ROLE_SUBSCRIBER 1u
#define TP_ROLE_PUBLISHER 2u

/* An owner word being given up by a recoverer: neither free nor live. */
#define TP_OWNER_RELEASING UINT64_MAX
#define TP_NO_RECORD UINT64_MAX /* header.last before the first message */

/* Which waiter word a sleeper counts in. */
#define TP_WAIT_DATA 0   /* subscribers waiting for a message */
#define TP_WAIT_SPACE 1  /* lossless publishers waiting for subscribers */
#define TP_WAIT_LOCK 2   /* publishers (and joining subscribers) waiting for the lock */

#define TP_WAITERS_COUNT(w) ((uint32_t)(w))
#define TP_WAITERS_REGISTER ((1ull << 32) + 1u)
#define TP_WAITERS_UNREGISTER ((1ull << 32) - 1u)
#define TP_RECOUNT_AFTER_IDLE_WAKES 64u

typedef enum {
    TP_OK = 0,
    TP_EMPTY = 1,    /* nothing to read */
    TP_FULL = 2,     /* lossless: a live subscriber holds the space */
    TP_BUSY = 3,     /* another publisher holds the lock */
    TP_TOO_BIG = 4,
    TP_CORRUPT = 5,
    TP_TIMEOUT = 6,
    TP_INTERRUPTED = 7,
    TP_NO_SLOT = 8,
    TP_TORN = 9,     /* the record was overwritten while being copied: read again */
} tp_status;

/* Per-record metadata, indexed by the record's first cell. */
struct tp_meta {
    _Atomic uint64_t tag;    /* TP_TAG(position, state); release-stored last */
    _Atomic uint64_t length; /* bytes (COMMITTED) or cells (PADDING) */
    _Atomic uint64_t seq;    /* message number, from 0 in publish order */
    uint64_t reserved;
};

struct tp_slot {
    _Atomic uint64_t owner;       /* RIP_OWNER word of the holder, 0 free */
    _Atomic uint64_t pos;         /* subscriber: everything before it is read */
    _Atomic uint32_t role;        /* TP_ROLE_* */
    _Atomic uint32_t sleepers[3]; /* this handle's threads counted in each waiter word */
    /* Doorbells (csrc/topic_bell.c): the owner's socket names, 0 for none. */
    _Atomic uint64_t data_bell;   /* subscriber: rung by a publish */
    _Atomic uint64_t space_bell;  /* publisher: rung by a read that frees space, or an unlock */
    uint8_t reserved[TP_LINE - 48];
};

struct tp_header {
    /* lines 0-1: written once by tp_format, magic last */
    _Atomic uint64_t magic;
    uint32_t abi_version;
    uint32_t policy;
    uint32_t cell_size;
    uint32_t slot_count;
    uint64_t ncells;
    uint64_t segment_size;
    uint64_t slots_offset;
    uint64_t meta_offset;
    uint64_t data_offset;
    uint64_t max_message;
    uint32_t creator_pid;
    uint32_t reserved0;
    uint8_t pad0[2 * TP_LINE - 80];
    /* line 2: written under the publisher lock */
    _Atomic uint64_t head;       /* published end: records before it are complete */
    _Atomic uint64_t last;       /* first cell of the newest record (stored after head) */
    _Atomic uint64_t next_seq;   /* sequence number of the next message */
    _Atomic uint64_t free_until; /* lossless: lowest live subscriber position last seen */
    uint8_t pad1[TP_LINE - 32];
    /* line 3: records before tail may be overwritten (stored before overwriting) */
    _Atomic uint64_t tail;
    uint8_t pad2[TP_LINE - 8];
    /* line 4: the publisher lock.  The semaphores are the wait backend's
     * (csrc/ring_backend.c) in RINGIPC_WAIT=sem builds; futex builds leave
     * them zero. */
    _Atomic uint64_t pub_owner;
    _Atomic uint64_t lock_waiters;
    _Atomic uint32_t lock_futex;
    uint32_t reserved1;
    sem_t lock_sem;
    uint8_t pad3[TP_LINE - 24 - sizeof(sem_t)];
    /* line 5 */
    _Atomic uint64_t data_waiters;
    _Atomic uint32_t data_futex;
    _Atomic uint32_t data_bells_armed;  /* ~ bits set in data_bells: on the line a publish loads */
    sem_t data_sem;
    uint8_t pad4[TP_LINE - 16 - sizeof(sem_t)];
    /* line 6 */
    _Atomic uint64_t space_waiters;
    _Atomic uint32_t space_futex;
    _Atomic uint32_t space_bells_armed; /* ~ bits set in space_bells: on the line a read loads */
    sem_t space_sem;
    uint8_t pad5[TP_LINE - 16 - sizeof(sem_t)];
    /* line 7 */
    _Atomic uint32_t slot_hint; /* one past the highest slot ever taken */
    uint8_t pad6[TP_LINE - 4];
    /* line 8: doorbells (csrc/topic_bell.c), scanned only while the armed
     * counts on lines 5 and 6 are non-zero. */
    _Atomic uint64_t data_bells[TP_MAX_SLOTS / 64];  /* bit i: slot i's data bell is armed */
    _Atomic uint64_t space_bells[TP_MAX_SLOTS / 64]; /* bit i: slot i's space bell is armed */
    uint8_t pad7[TP_LINE - 2 * 8 * (TP_MAX_SLOTS / 64)];
};

_Static_assert(sizeof(sem_t) <= TP_LINE - 24, "each semaphore fits its waiter line");
_Static_assert(sizeof(struct tp_meta) == 32, "meta entries are 32 bytes: a power of two, two per line");
_Static_assert(sizeof(struct tp_slot) == TP_LINE, "a slot fills one cache line: written by its owner only");
_Static_assert(offsetof(struct tp_header, head) == 2 * TP_LINE, "writer words start on their own line");
_Static_assert(offsetof(struct tp_header, tail) == 3 * TP_LINE, "tail is read by every subscriber after every copy");
_Static_assert(offsetof(struct tp_header, pub_owner) == 4 * TP_LINE, "the lock is contended by publishers only");
_Static_assert(offsetof(struct tp_header, data_waiters) == 5 * TP_LINE, "subscriber waiters");
_Static_assert(offsetof(struct tp_header, space_waiters) == 6 * TP_LINE, "publisher waiters");
_Static_assert(offsetof(struct tp_header, slot_hint) == 7 * TP_LINE, "slot hint");
_Static_assert(offsetof(struct tp_header, data_bells) == 8 * TP_LINE, "doorbells");
_Static_assert(offsetof(struct tp_header, data_bells_armed) / TP_LINE == 5 &&
               offsetof(struct tp_header, space_bells_armed) / TP_LINE == 6,
               "armed counts on the lines their notifiers load already: watching costs nobody a cache miss");
_Static_assert(sizeof(struct tp_header) == 9 * TP_LINE, "the header uses 9 lines of its page");
_Static_assert(sizeof(struct tp_header) <= TP_PAGE, "the header fits its page");
_Static_assert(TP_MAX_SLOTS * sizeof(struct tp_slot) % TP_PAGE == 0, "slots end on a page");

/* A process-local handle: a publisher, a subscriber, or neither (just attached). */
typedef struct {
    struct tp_header *hdr;
    struct tp_slot *slots;
    struct tp_meta *meta;
    unsigned char *data;
    uint64_t ncells, mask, max_message, size;
    uint32_t policy;
    uint64_t owner;          /* this process's owner word */
    uint64_t fork_generation;
    int slot;                /* index into slots, -1 if none */
    uint32_t role;
    /* subscriber state */
    uint64_t pos;            /* next record to read (stream policies) */
    uint64_t expected;       /* sequence number expected next */
    uint64_t missed;         /* messages skipped, in total */
    uint64_t torn;           /* copies thrown away because a publisher overwrote them */
    uint64_t seen_last;      /* latest: position of the record last read */
    uint64_t rd_pos, rd_next, rd_seq, rd_length;
    /* publisher state */
    uint64_t wr_head, wr_pad, wr_cells, wr_length;
    uint64_t need_tail;      /* lossless: the tail the last FULL attempt needed */
    uint64_t full_head;      /* head at that attempt */
    uint32_t idle_wakes[3];
} tp_handle;

uint64_t tp_cells_for_capacity(uint64_t capacity);
uint64_t tp_segment_size(uint64_t ncells);
tp_status tp_format(void *base, uint64_t size, uint64_t ncells, uint32_t policy, uint32_t creator_pid);
tp_status tp_attach(tp_handle *h, void *base, uint64_t size, const char **why);
uint32_t tp_creator_pid(const void *base, uint64_t size); /* 0 if not a valid topic header */

/* Slots.  tp_open_publisher takes a slot for sleeping; tp_subscribe takes the
 * lock (TP_BUSY if held) and a slot at the position `history` records back. */
tp_status tp_open_publisher(tp_handle *h);
tp_status tp_subscribe(tp_handle *h, uint64_t history);
/* Re-subscribes a handle copied into another process at its position. */
tp_status tp_subscribe_at(tp_handle *h, uint64_t pos, uint64_t expected, uint64_t seen_last);
void tp_close(tp_handle *h);
/* Called on every operation: after fork() the child takes its own slot. */
int tp_forked(tp_handle *h);

/* Publishing: begin (lock + space) -> copy into *dst -> commit (or abort). */
tp_status tp_write_begin(tp_handle *h, uint64_t length, void **dst);
void tp_write_commit(tp_handle *h);
void tp_write_abort(tp_handle *h);

/* Reading: begin -> copy out of *src -> end.  TP_TORN from end: the copy may
 * be torn (a publisher overwrote it); call begin again. */
tp_status tp_read_begin(tp_handle *h, const void **src, uint64_t *length);
tp_status tp_read_end(tp_handle *h);
int tp_readable(tp_handle *h);

/* Waiting (one slice; the caller loops and checks signals). */
tp_status tp_wait_readable(tp_handle *h, const struct timespec *deadline, uint32_t spin);
tp_status tp_wait_writable(tp_handle *h, tp_status why, const struct timespec *deadline, uint32_t spin);

/* Doorbells (csrc/topic_bell.c, the mechanism of csrc/ring_bell.c): a
 * subscriber's data bell rings when a message is published, a publisher's
 * space bell when a lossless subscriber reads or leaves or the publisher lock
 * is given up.  install puts a socket name (0: none) in the handle's slot
 * (TP_BUSY if one is there, TP_NO_SLOT without a slot of this process); arm
 * (csrc/topic_wait.c) returns 1 if the handle is ready already (no ring will
 * come), 0 if the bell will ring, -1 without a slot. */
tp_status tp_bell_install(tp_handle *h, int writer, uint64_t name);
int tp_bell_arm(tp_handle *h, int writer);
void tp_bell_disarm(tp_handle *h, int writer);

/* Frees the lock and slots of dead processes; returns how many it freed. */
int tp_recover(tp_handle *h);
/* Slot counts for tests and stats. */
uint32_t tp_live_subscribers(tp_handle *h);
/* head, tail, last, next_seq, pub_owner, free_until, data waiters, space
 * waiters, lock waiters, slot_hint, the section offsets, then the armed data
 * and space bell counts (tests). */
#define TP_DEBUG_WORDS 15
void tp_debug_state(tp_handle *h, uint64_t out[TP_DEBUG_WORDS]);

/* From csrc/ring_liveness.c. */
uint64_t rip_self_owner(void);
int rip_owner_alive(uint64_t owner);
/* From csrc/ring_backend.c and csrc/ring_chaos.c: how this build waits, and
 * whether it pauses at chaos points (the variant checks in .ci/variant). */
const char *rip_wait_backend_name(void);
int rip_chaos_build(void);

#endif
