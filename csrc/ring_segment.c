/*
 * Creating, validating and joining a segment; the per-process roles (SPSC
 * producer/consumer, MPMC slot, the slot every sleeping handle holds) that
 * make recovery after a crash possible.
 */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "ring_internal.h"

#if defined(RINGIPC_WAIT_SEM)
#define RIP_THIS_BACKEND RIP_BACKEND_SEM
#else
#define RIP_THIS_BACKEND RIP_BACKEND_FUTEX
#endif

uint64_t rip_fork_generation = 0;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Runs in the child only, single-threaded: a plain increment is enough. */
static void on_fork_child(void) { rip_fork_generation++; }
static void install_atfork(void) { pthread_atfork(NULL, NULL, on_fork_child); }

static uint64_t round_up(uint64_t x, uint64_t align) { return (x + align - 1) / align * align; }

uint64_t rip_cells_for_capacity(uint64_t capacity_bytes)
{
    uint64_t cells = (capacity_bytes + RIP_CELL - 1) >> RIP_CELL_SHIFT;
    uint64_t pow2 = RIP_MIN_CELLS;
    if (capacity_bytes > (RIP_MAX_CELLS << RIP_CELL_SHIFT))
        return 0;
    while (pow2 < cells)
        pow2 <<= 1;
    return pow2;
}

static uint64_t meta_offset(void) { return RIP_HEADER_SIZE + (uint64_t)RIP_MAX_SLOTS * sizeof(struct rip_slot); }
static uint64_t data_offset(uint64_t ncells) { return meta_offset() + round_up(ncells * sizeof(struct rip_meta), RIP_PAGE); }

uint64_t rip_segment_size(uint64_t ncells) { return data_offset(ncells) + ncells * RIP_CELL; }

static int valid_ncells(uint64_t ncells)
{
    return ncells >= RIP_MIN_CELLS && ncells <= RIP_MAX_CELLS && (ncells & (ncells - 1)) == 0;
}

rip_status rip_format(void *base, uint64_t segment_size, uint64_t ncells, uint32_t kind, int32_t creator_pid)
{
    struct rip_header *hdr = base;
    if (!valid_ncells(ncells) || segment_size != rip_segment_size(ncells) ||
        (kind != RIP_KIND_SPSC && kind != RIP_KIND_MPMC))
        return RIP_BAD_ARGUMENT;
    /* The data area needs no clearing: a cell is read only after its tag says so. */
    memset(base, 0, data_offset(ncells));
    hdr->abi_version = RIP_ABI_VERSION;
    hdr->kind = kind;
    hdr->wait_backend = RIP_THIS_BACKEND;
    hdr->cell_size = RIP_CELL;
    hdr->ncells = ncells;
    hdr->segment_size = segment_size;
    hdr->meta_offset = meta_offset();
    hdr->data_offset = data_offset(ncells);
    hdr->creator_pid = creator_pid;
    hdr->max_slots = RIP_MAX_SLOTS;
    if (RIP_THIS_BACKEND == RIP_BACKEND_SEM &&
        (rip_backend_init(&hdr->data_sem) != 0 || rip_backend_init(&hdr->space_sem) != 0))
        return RIP_BAD_ARGUMENT;
    /* M1: publishes every field above; pairs with M2 in rip_attach. */
    a_store(&hdr->magic, RIP_MAGIC, REL);
    return RIP_OK;
}

static rip_status corrupt(const char **why, const char *reason)
{
    *why = reason;
    return RIP_CORRUPT;
}

rip_status rip_attach(rip_ring *ring, void *base, uint64_t segment_size, const char **why)
{
    struct rip_header *hdr = base;
    uint64_t ncells, head_before, rel, cons, head_after;

    pthread_once(&atfork_once, install_atfork);
    memset(ring, 0, sizeof(*ring));
    *why = NULL;
    if (segment_size < RIP_HEADER_SIZE)
        return corrupt(why, "segment is smaller than a ring header");
    /* M2: pairs with M1; a segment still being formatted reads as foreign. */
    if (a_load(&hdr->magic, ACQ) != RIP_MAGIC)
        return corrupt(why, "not a ringipc ring (bad magic)");
    if (hdr->abi_version != RIP_ABI_VERSION)
        return corrupt(why, "ring was made by a ringipc with another segment ABI version");
    if (hdr->cell_size != RIP_CELL || hdr->max_slots != RIP_MAX_SLOTS)
        return corrupt(why, "ring geometry (cell size or slot count) differs from this build");
    if (hdr->kind != RIP_KIND_SPSC && hdr->kind != RIP_KIND_MPMC)
        return corrupt(why, "unknown ring kind");
    if (hdr->wait_backend != RIP_THIS_BACKEND)
        return corrupt(why, "ring was made by a ringipc built with another wait backend (futex vs semaphore)");
    ncells = hdr->ncells;
    if (!valid_ncells(ncells))
        return corrupt(why, "ring capacity is not a valid power of two");
    if (hdr->segment_size != segment_size || rip_segment_size(ncells) != segment_size)
        return corrupt(why, "segment size does not match the capacity recorded in its header (truncated?)");
    if (hdr->meta_offset != meta_offset() ||
        hdr->data_offset != data_offset(ncells))
        return corrupt(why, "segment section offsets do not match its capacity");
    /* Loaded in this order, a healthy ring always gives rel <= cons <= head_after
     * and head_before - rel <= ncells (positions only grow). */
    head_before = a_load(&hdr->head, ACQ);
    rel = a_load(&hdr->release, ACQ);
    cons = a_load(&hdr->cons, ACQ);
    head_after = a_load(&hdr->head, ACQ);
    if (rel > cons || cons > head_after || (head_before > rel && head_before - rel > ncells))
        return corrupt(why, "ring positions break the invariant release <= cons <= head <= release + capacity");
    /* A tag keeps a position's low 62 bits: beyond that, positions alias (a
     * healthy ring needs centuries of traffic to get there). */
    if (head_after >> 62)
        return corrupt(why, "ring positions are beyond 2^62 cells, which record tags cannot tell apart");

    ring->hdr = hdr;
    ring->slots = (struct rip_slot *)((unsigned char *)base + RIP_HEADER_SIZE);
    ring->meta = (struct rip_meta *)((unsigned char *)base + meta_offset());
    ring->data = (unsigned char *)base + data_offset(ncells);
    ring->ncells = ncells;
    ring->mask = ncells - 1;
    ring->max_message = (ncells / 2) * RIP_CELL;
    ring->multi = hdr->kind == RIP_KIND_MPMC;
    ring->pid = (int32_t)getpid();
    ring->owner = rip_self_owner(); /* before any role is taken under it */
    ring->fork_generation = rip_fork_generation;
    ring->cached_release = rel;
    ring->cached_head = head_after;
    ring->spin_budget[0] = ring->spin_budget[1] = UINT32_MAX; /* spin fully until it stops paying */
    return RIP_OK;
}

/* After fork() the child must not act under the parent's pid or slot. */
static void refresh_after_fork(rip_ring *ring)
{
    if (likely(ring->fork_generation == rip_fork_generation))
        return;
    ring->fork_generation = rip_fork_generation;
    ring->pid = (int32_t)getpid();
    ring->owner = rip_self_owner(); /* the child started later than its parent */
    ring->slot = NULL;
    ring->is_producer = 0;
    ring->is_consumer = 0;
}

static rip_status claim_role(rip_ring *ring, _Atomic uint64_t *holder)
{
    uint64_t current = a_load(holder, ACQ);
    for (;;) {
        if (current == ring->owner)
            return RIP_OK;
        /* Busy only while the holder lives: one recorded under a pid that
         * another process (even this one) now holds is dead, since
         * rip_owner_alive compares start times too. */
        if (current != 0 && rip_owner_alive(current))
            return RIP_BUSY;
        /* A dead holder left nothing half-done: SPSC publishes with a single store.
         * One CAS installs our pid and start time together. */
        if (a_cas(holder, &current, ring->owner, ACQ_REL, ACQ)) {
            if (current != 0) /* it may have died asleep: take its count back now */
                rip_recount_sleepers(ring);
            return RIP_OK;
        }
    }
}

/* A dead process's slot may be reused only once nobody can need its intents. */
static int slot_resolved(rip_ring *ring, struct rip_slot *slot)
{
    uint64_t produce = a_load(&slot->produce_intent, RLX);
    uint64_t consume = a_load(&slot->consume_intent, RLX);
    return (produce == 0 || produce - 1 < a_load(&ring->hdr->cons, ACQ)) &&
           (consume == 0 || consume - 1 < a_load(&ring->hdr->release, ACQ));
}

static rip_status take_slot(rip_ring *ring)
{
    uint32_t recovered;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < RIP_MAX_SLOTS; i++) {
            struct rip_slot *slot = &ring->slots[i];
            uint64_t owner = a_load(&slot->owner, ACQ);
            if (owner != 0 && (rip_owner_alive(owner) || !slot_resolved(ring, slot)))
                continue;
            if (a_cas(&slot->owner, &owner, ring->owner, ACQ_REL, RLX)) {
                a_store(&slot->produce_intent, 0, RLX);
                a_store(&slot->consume_intent, 0, RLX);
                /* A dead owner's counts: a recount that still reads them under
                 * our identity over-counts, which only costs wake calls. */
                a_store(&slot->data_sleepers, 0, RLX);
                a_store(&slot->space_sleepers, 0, RLX);
                rip_bell_forget(ring, slot); /* a dead owner's bells ring nobody */
                ring->slot = slot;
                if (owner != 0) /* it may have died asleep: take its count back now */
                    rip_recount_sleepers(ring);
                return RIP_OK;
            }
        }
        rip_recover(ring, &recovered);
    }
    return RIP_NO_SLOT;
}

rip_status rip_ensure_role(rip_ring *ring, int producer)
{
    refresh_after_fork(ring);
    if (ring->multi)
        return ring->slot ? RIP_OK : take_slot(ring);
    if (producer) {
        if (ring->is_producer)
            return RIP_OK;
        if (claim_role(ring, &ring->hdr->spsc_producer) != RIP_OK)
            return RIP_BUSY;
        ring->is_producer = 1;
        ring->cached_release = a_load(&ring->hdr->release, ACQ);
        return RIP_OK;
    }
    if (ring->is_consumer)
        return RIP_OK;
    if (claim_role(ring, &ring->hdr->spsc_consumer) != RIP_OK)
        return RIP_BUSY;
    ring->is_consumer = 1;
    return RIP_OK;
}

rip_status rip_ensure_wait_slot(rip_ring *ring)
{
    refresh_after_fork(ring); /* never sleep counted in the parent's slot */
    return ring->slot ? RIP_OK : take_slot(ring);
}

void rip_release_roles(rip_ring *ring)
{
    uint64_t me;
    if (ring->hdr == NULL || ring->fork_generation != rip_fork_generation)
        return; /* inherited roles belong to the parent */
    if (ring->slot) {
        rip_bell_forget(ring, ring->slot);
        a_store(&ring->slot->produce_intent, 0, RLX);
        a_store(&ring->slot->consume_intent, 0, RLX);
        a_store(&ring->slot->owner, 0, REL);
        ring->slot = NULL;
    }
    me = ring->owner;
    if (ring->is_producer)
        a_cas(&ring->hdr->spsc_producer, &me, 0, ACQ_REL, RLX);
    me = ring->owner;
    if (ring->is_consumer)
        a_cas(&ring->hdr->spsc_consumer, &me, 0, ACQ_REL, RLX);
    ring->is_producer = ring->is_consumer = 0;
}
