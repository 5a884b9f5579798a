/*
 * The topic segment: sizes, formatting, validating a header and attaching a
 * handle to it; and the fork generation, so a forked child does not act
 * under its parent's slot.  Layout and offsets: csrc/topic.h, docs/topic.md.
 */
#include <pthread.h>
#include <string.h>

#include "topic_internal.h"

/* ---- fork generation */

static uint64_t tp_fork_gen = 0;
static pthread_once_t tp_atfork_once = PTHREAD_ONCE_INIT;
static void tp_on_fork_child(void) { tp_fork_gen++; }
static void tp_install_atfork(void) { pthread_atfork(NULL, NULL, tp_on_fork_child); }

int tp_forked(tp_handle *h)
{
    if (likely(h->fork_generation == tp_fork_gen))
        return 0;
    h->fork_generation = tp_fork_gen;
    h->owner = rip_self_owner();
    h->slot = -1; /* the slot is the parent's: it gives it up itself */
    memset(h->idle_wakes, 0, sizeof(h->idle_wakes));
    return 1;
}

/* ---- sizes */

uint64_t tp_cells_for_capacity(uint64_t capacity)
{
    uint64_t cells = TP_MIN_CELLS;
    while (cells * TP_CELL < capacity) {
        if (cells >= TP_MAX_CELLS)
            return 0;
        cells <<= 1;
    }
    return cells;
}

uint64_t tp_segment_size(uint64_t ncells)
{
    return TP_PAGE + TP_SLOTS_BYTES + tp_meta_bytes(ncells) + ncells * TP_CELL;
}

tp_status tp_format(void *base, uint64_t size, uint64_t ncells, uint32_t policy, uint32_t creator_pid)
{
    if (ncells < TP_MIN_CELLS || ncells > TP_MAX_CELLS || (ncells & (ncells - 1)) != 0)
        return TP_CORRUPT;
    if (policy < TP_LOSSLESS || policy > TP_LATEST || size != tp_segment_size(ncells))
        return TP_CORRUPT;
    struct tp_header *hdr = base;
    memset(base, 0, TP_PAGE + TP_SLOTS_BYTES + tp_meta_bytes(ncells));
    /* Semaphore builds: the backend's semaphores, before anyone can sleep
     * on them (no one can attach before the magic below). */
    if (rip_backend_init(&hdr->lock_sem) != 0 || rip_backend_init(&hdr->data_sem) != 0 ||
        rip_backend_init(&hdr->space_sem) != 0)
        return TP_CORRUPT;
    hdr->abi_version = TP_ABI_VERSION;
    hdr->policy = policy;
    hdr->cell_size = TP_CELL;
    hdr->slot_count = TP_MAX_SLOTS;
    hdr->ncells = ncells;
    hdr->segment_size = size;
    hdr->slots_offset = TP_PAGE;
    hdr->meta_offset = TP_PAGE + TP_SLOTS_BYTES;
    hdr->data_offset = TP_PAGE + TP_SLOTS_BYTES + tp_meta_bytes(ncells);
    hdr->max_message = (ncells / 2) * TP_CELL;
    hdr->creator_pid = creator_pid;
    a_store(&hdr->last, TP_NO_RECORD, RLX);
    /* M1: every field above before the magic that makes the segment valid. */
    a_store(&hdr->magic, TP_MAGIC, REL);
    return TP_OK;
}

static const char *check_header(const struct tp_header *hdr, uint64_t size)
{
    if (size < TP_PAGE + TP_SLOTS_BYTES)
        return "segment smaller than a topic header";
    /* M2: pairs with the creator's release store of the magic. */
    if (a_load(&((struct tp_header *)hdr)->magic, ACQ) != TP_MAGIC)
        return "not a ringipc topic (bad magic)";
    if (hdr->abi_version != TP_ABI_VERSION)
        return "topic layout version mismatch";
    if (hdr->cell_size != TP_CELL || hdr->slot_count != TP_MAX_SLOTS)
        return "cell size or slot count mismatch";
    if (hdr->policy < TP_LOSSLESS || hdr->policy > TP_LATEST)
        return "unknown policy";
    uint64_t n = hdr->ncells;
    if (n < TP_MIN_CELLS || n > TP_MAX_CELLS || (n & (n - 1)) != 0)
        return "cell count not a power of two in range";
    if (hdr->segment_size != size || tp_segment_size(n) != size)
        return "segment size does not match its header";
    if (hdr->slots_offset != TP_PAGE || hdr->meta_offset != TP_PAGE + TP_SLOTS_BYTES ||
        hdr->data_offset != TP_PAGE + TP_SLOTS_BYTES + tp_meta_bytes(n))
        return "section offsets do not match the layout";
    if (hdr->max_message != (n / 2) * TP_CELL)
        return "max message size does not match the capacity";
    return NULL;
}

uint32_t tp_creator_pid(const void *base, uint64_t size)
{
    const struct tp_header *hdr = base;
    return check_header(hdr, size) == NULL ? hdr->creator_pid : 0;
}

tp_status tp_attach(tp_handle *h, void *base, uint64_t size, const char **why)
{
    struct tp_header *hdr = base;
    const char *bad = check_header(hdr, size);
    if (bad == NULL) {
        uint64_t head = a_load(&hdr->head, ACQ), tail = a_load(&hdr->tail, ACQ);
        if (tail > head || head - tail > hdr->ncells || head >= (1ull << 61))
            bad = "positions break tail <= head <= tail + ncells";
    }
    if (bad != NULL) {
        if (why)
            *why = bad;
        return TP_CORRUPT;
    }
    pthread_once(&tp_atfork_once, tp_install_atfork);
    memset(h, 0, sizeof(*h));
    h->hdr = hdr;
    h->slots = (struct tp_slot *)((unsigned char *)base + TP_PAGE);
    h->meta = (struct tp_meta *)((unsigned char *)base + hdr->meta_offset);
    h->data = (unsigned char *)base + hdr->data_offset;
    h->ncells = hdr->ncells;
    h->mask = hdr->ncells - 1;
    h->max_message = hdr->max_message;
    h->size = size;
    h->policy = hdr->policy;
    h->fork_generation = tp_fork_gen;
    h->owner = rip_self_owner();
    h->slot = -1;
    h->seen_last = TP_NO_RECORD;
    return TP_OK;
}

void tp_debug_state(tp_handle *h, uint64_t out[TP_DEBUG_WORDS])
{
    struct tp_header *hdr = h->hdr;
    out[0] = a_load(&hdr->head, ACQ);
    out[1] = a_load(&hdr->tail, ACQ);
    out[2] = a_load(&hdr->last, ACQ);
    out[3] = a_load(&hdr->next_seq, ACQ);
    out[4] = a_load(&hdr->pub_owner, ACQ);
    out[5] = a_load(&hdr->free_until, ACQ);
    out[6] = TP_WAITERS_COUNT(a_load(&hdr->data_waiters, ACQ));
    out[7] = TP_WAITERS_COUNT(a_load(&hdr->space_waiters, ACQ));
    out[8] = TP_WAITERS_COUNT(a_load(&hdr->lock_waiters, ACQ));
    out[9] = a_load(&hdr->slot_hint, ACQ);
    out[10] = TP_PAGE;
    out[11] = TP_PAGE + TP_SLOTS_BYTES;
    out[12] = TP_PAGE + TP_SLOTS_BYTES + tp_meta_bytes(h->ncells);
    out[13] = a_load(&hdr->data_bells_armed, ACQ);
    out[14] = a_load(&hdr->space_bells_armed, ACQ);
}
