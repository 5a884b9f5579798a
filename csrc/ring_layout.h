/*
 * The one definition of every byte of a ringipc shared-memory segment.
 * Python never hard-codes an offset; Cython sees these structs only through
 * ringipc/core/_cring.pxd.  Changing anything here changes RIP_ABI_VERSION.
 *
 *   0        4 KiB                 12 KiB           12 KiB + M          end
 *   +--------+---------------------+----------------+-------------------+
 *   | header | slot table          | record meta    | data cells        |
 *   | (4 KiB)| 128 x 64 B          | ncells x 16 B  | ncells x 64 B     |
 *   +--------+---------------------+----------------+-------------------+
 *                                    M = ncells*16 rounded up to 4 KiB
 *
 * Data is divided into 64-byte cells; a record occupies whole, contiguous
 * cells.  Its metadata (tag + length) lives in a separate array indexed by
 * the record's first cell, so nothing a user writes into the data area can
 * ever be mistaken for a record header (an in-band header could be forged by
 * stale payload bytes from an earlier lap).
 */
#ifndef RINGIPC_RING_LAYOUT_H
#define RINGIPC_RING_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <semaphore.h>

#define RIP_MAGIC 0x31435049474e4952ULL /* "RINGIPC1" read as little-endian bytes */
#define RIP_ABI_VERSION 5u /* 2: sleeper counts in slots, waiter words carry a sequence;
                              3: owners are (pid, start time) words;
                              4: doorbells (bell names in slots, armed bitmaps in the header);
                              5: wake-wanted words: one wake system call per sleep, not per notify */
#define RIP_CACHE_LINE 64u
#define RIP_PAGE 4096u
#define RIP_CELL 64u            /* bytes per data cell: the allocation granule */
#define RIP_CELL_SHIFT 6u
#define RIP_MAX_SLOTS 128u      /* processes that may use one MPMC ring at once */
#define RIP_MIN_CELLS 2u
#define RIP_MAX_CELLS (1ull << 34) /* 1 TiB of data: far above any /dev/shm */

enum rip_kind { RIP_KIND_SPSC = 1, RIP_KIND_MPMC = 2 };
enum rip_wait_backend_id { RIP_BACKEND_FUTEX = 1, RIP_BACKEND_SEM = 2 };

/* header.flags: set once, never cleared (a closed side stays closed). */
#define RIP_FLAG_WRITER_CLOSED 1u
#define RIP_FLAG_READER_CLOSED 2u

/*
 * Record tags.  tag = (position << 2) | state, where position is the record's
 * first cell as a free-running 64-bit count.  Because the full position is in
 * the tag, a tag left over from an earlier lap never equals the tag a reader
 * expects now (no ABA on reuse of a cell), and a reader needs no lap counter.
 * A tag whose position differs from the cell's current position is "stale":
 * the record at that position is claimed but not yet committed.
 */
#define RIP_STATE_COMMITTED 1u /* holds a message of `length` bytes */
#define RIP_STATE_PADDING 2u   /* skip `length` bytes (wrap filler, or a dead claim) */
#define RIP_STATE_CONSUMED 3u  /* read; space reclaimable once release reaches it */
#define RIP_TAG(pos, state) (((uint64_t)(pos) << 2) | (uint64_t)(state))

struct rip_meta {
    _Atomic uint64_t tag;
    _Atomic uint64_t length; /* bytes; published by the release store of tag */
};

/*
 * Owner words: who holds a slot, an SPSC role or recovery.  A pid alone goes
 * stale when its process dies and the pid is handed to another process, so
 * the owner is named by pid (low 32 bits) and the low 32 bits of its start
 * time in clock ticks since boot (high 32 bits; 0 = unknown, check the pid
 * alone).  Both halves live in one word so that one CAS takes or gives up
 * the whole identity: nobody ever sees a pid beside another process's start
 * time.  0 means free.  csrc/ring_liveness.c decides whether an owner lives.
 */
#define RIP_OWNER(pid, start) (((uint64_t)(uint32_t)(start) << 32) | (uint64_t)(uint32_t)(pid))
#define RIP_OWNER_PID(owner) ((uint32_t)(owner))
#define RIP_OWNER_START(owner) ((uint32_t)((owner) >> 32))

/*
 * One slot per handle that uses an MPMC ring, or that sleeps on a ring of
 * either kind.  Each side records the position it is about to claim *before*
 * its claiming CAS (intent = position + 1; 0 = idle), so a recoverer can tell
 * which process owned a claim that was never finished.  The sleeper counts say
 * how many of the owner's threads are registered in the header's waiter words
 * (csrc/ring_waiters.c), so the registrations of a process that died asleep
 * can be taken back.  A slot fills a cache line: it is written on every
 * message by its owner and must not share a line with another process's slot.
 */
struct rip_slot {
    _Atomic uint64_t owner;          /* RIP_OWNER of the holding process, 0 if free */
    _Atomic uint64_t produce_intent;
    _Atomic uint64_t consume_intent;
    _Atomic uint32_t data_sleepers;  /* owner's threads counted in data_waiters */
    _Atomic uint32_t space_sleepers; /* owner's threads counted in space_waiters */
    /* Doorbells (csrc/ring_bell.c): the name of the owner's socket to ring
     * when data (or space) arrives and its bit in the header is armed; 0: none. */
    _Atomic uint64_t data_bell;
    _Atomic uint64_t space_bell;
    uint8_t reserved1[RIP_CACHE_LINE - 48];
};

/*
 * header.data_waiters / space_waiters: low 32 bits count the registered
 * sleepers (all notify() looks at), high 32 bits are a sequence bumped by
 * every change, so a recount's CAS fails if anything changed since it read
 * the word, even if the count came back to the same value (ABA).
 */
#define RIP_WAITERS_COUNT(w) ((uint32_t)(w))
#define RIP_WAITERS_SEQ_ONE (1ull << 32)
#define RIP_WAITERS_REGISTER (RIP_WAITERS_SEQ_ONE + 1u)   /* count + 1, seq + 1 */
#define RIP_WAITERS_UNREGISTER (RIP_WAITERS_SEQ_ONE - 1u) /* count - 1, seq + 1 (borrow carries) */

struct rip_header {
    /* line 0: identity; written by the creator before magic is published */
    _Atomic uint64_t magic;        /* release-stored last by the creator */
    uint32_t abi_version;
    uint32_t kind;                 /* enum rip_kind */
    uint32_t wait_backend;         /* enum rip_wait_backend_id */
    uint32_t cell_size;
    uint64_t ncells;               /* power of two */
    uint64_t segment_size;
    uint64_t meta_offset;
    uint64_t data_offset;
    int32_t creator_pid;
    uint32_t max_slots;
    /* line 1: producers' claim position (cells) */
    _Alignas(RIP_CACHE_LINE) _Atomic uint64_t head;
    /* line 2: consumers' claim position */
    _Alignas(RIP_CACHE_LINE) _Atomic uint64_t cons;
    /* line 3: everything before release is free space for producers */
    _Alignas(RIP_CACHE_LINE) _Atomic uint64_t release;
    /* line 4: consumers sleep here when empty */
    _Alignas(RIP_CACHE_LINE) _Atomic uint32_t data_futex;
    _Atomic uint32_t data_bells_armed; /* ~ bits set in data_bells: notify() rings bells only if non-zero */
    _Atomic uint64_t data_waiters;  /* sequence:count, see RIP_WAITERS_COUNT */
    _Atomic uint64_t data_bells[RIP_MAX_SLOTS / 64]; /* bit i: slot i's data bell is armed */
    /* 1: a sleeper went to sleep since the last wake-up; the next notifier
     * takes it (0) and makes the wake system call, later ones need not. */
    _Atomic uint32_t data_wake_wanted;
    /* line 5: producers sleep here when full */
    _Alignas(RIP_CACHE_LINE) _Atomic uint32_t space_futex;
    _Atomic uint32_t space_bells_armed;
    _Atomic uint64_t space_waiters;
    _Atomic uint64_t space_bells[RIP_MAX_SLOTS / 64];
    _Atomic uint32_t space_wake_wanted;
    /* line 6: rarely written state */
    _Alignas(RIP_CACHE_LINE) _Atomic uint32_t flags;
    uint32_t reserved6;
    _Atomic uint64_t spsc_producer;  /* SPSC: RIP_OWNER of the one live producer, 0 if none */
    _Atomic uint64_t spsc_consumer;
    _Atomic uint64_t recovery_owner; /* RIP_OWNER of the process recovering; stolen if dead */
    /* lines 7-8: semaphores for the POSIX-semaphore wait backend */
    _Alignas(RIP_CACHE_LINE) sem_t data_sem;
    _Alignas(RIP_CACHE_LINE) sem_t space_sem;
};

#define RIP_HEADER_SIZE RIP_PAGE

_Static_assert(sizeof(struct rip_meta) == 16, "meta entries are indexed by cell; the array stride must be fixed");
_Static_assert(sizeof(struct rip_slot) == RIP_CACHE_LINE, "a slot is written per message by one process: one line each avoids false sharing");
_Static_assert(offsetof(struct rip_header, max_slots) + 4 <= RIP_CACHE_LINE, "identity fields fit line 0, read once at attach");
_Static_assert(offsetof(struct rip_header, magic) == 0, "magic first: attach checks it before trusting any other field");
_Static_assert(offsetof(struct rip_header, head) == 1 * RIP_CACHE_LINE, "producer position on its own line: producers and consumers must not false-share");
_Static_assert(offsetof(struct rip_header, cons) == 2 * RIP_CACHE_LINE, "consumer position on its own line, apart from head");
_Static_assert(offsetof(struct rip_header, release) == 3 * RIP_CACHE_LINE, "release is written by consumers, read by producers: own line");
_Static_assert(offsetof(struct rip_header, data_futex) == 4 * RIP_CACHE_LINE, "futex words apart from positions: waking must not slow the fast path");
_Static_assert(offsetof(struct rip_header, space_futex) == 5 * RIP_CACHE_LINE, "the two wait directions on separate lines");
_Static_assert(offsetof(struct rip_header, data_waiters) == 4 * RIP_CACHE_LINE + 8 &&
               offsetof(struct rip_header, space_waiters) == 5 * RIP_CACHE_LINE + 8,
               "each waiter word beside its futex, 8-byte aligned for one atomic load in notify()");
_Static_assert(offsetof(struct rip_slot, data_sleepers) == 24 && offsetof(struct rip_slot, space_sleepers) == 28,
               "sleeper counts in the slot's own line, after the intents");
_Static_assert(offsetof(struct rip_header, data_bells_armed) == 4 * RIP_CACHE_LINE + 4 &&
               offsetof(struct rip_header, data_bells) + sizeof(((struct rip_header *)0)->data_bells) <= 5 * RIP_CACHE_LINE &&
               offsetof(struct rip_header, space_bells) + sizeof(((struct rip_header *)0)->space_bells) <= 6 * RIP_CACHE_LINE,
               "the armed-bell count on the line notify() already loads: watching costs nobody a cache miss");
_Static_assert(offsetof(struct rip_header, data_wake_wanted) + 4 <= 5 * RIP_CACHE_LINE &&
               offsetof(struct rip_header, space_wake_wanted) + 4 <= 6 * RIP_CACHE_LINE,
               "each wake-wanted word on its waiter word's line: notify() reads it with no extra cache miss");
_Static_assert(RIP_MAX_SLOTS % 64 == 0, "one armed bit per slot, 64 to a word");
_Static_assert(offsetof(struct rip_slot, owner) == 0 && offsetof(struct rip_slot, produce_intent) == 8,
               "the owner word first, 8-byte aligned: taken and given up with one 64-bit CAS");
_Static_assert(offsetof(struct rip_header, flags) == 6 * RIP_CACHE_LINE, "rare state on its own line");
_Static_assert(offsetof(struct rip_header, spsc_producer) % 8 == 0 && offsetof(struct rip_header, recovery_owner) % 8 == 0 &&
               offsetof(struct rip_header, recovery_owner) + 8 <= 7 * RIP_CACHE_LINE,
               "owner words 8-byte aligned for one 64-bit CAS, all within the rare-state line");
_Static_assert(offsetof(struct rip_header, data_sem) == 7 * RIP_CACHE_LINE, "semaphores follow the rare state");
_Static_assert(sizeof(sem_t) <= RIP_CACHE_LINE, "each semaphore must fit its line");
_Static_assert(sizeof(struct rip_header) <= RIP_HEADER_SIZE, "header must fit the first page");
_Static_assert((RIP_HEADER_SIZE % RIP_PAGE) == 0, "slot table starts page-aligned");
_Static_assert((RIP_MAX_SLOTS * sizeof(struct rip_slot)) % RIP_PAGE == 0, "meta array starts page-aligned");
_Static_assert((1u << RIP_CELL_SHIFT) == RIP_CELL, "cell shift and size agree");

#endif
