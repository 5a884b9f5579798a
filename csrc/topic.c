/*
 * The broadcast ring behind ringipc.Topic.  Design and memory-order argument:
 * docs/topic.md.  In short:
 *
 *  - Publishers take the publisher lock (an owner word, CAS 0 -> self), write
 *    a record at `head`, store its metadata (tag last, release: P1), then
 *    release-store `head` (P2) and `last` (P3), then give the lock back.  A
 *    publisher killed before P2 leaves nothing visible; its lock is taken
 *    back by tp_recover once its owner word names a dead process.
 *  - Before overwriting any cell a publisher stores the new `tail` (every
 *    record before it may be overwritten) and issues a release fence (S1).
 *    Lossless publishers only move `tail` up to the lowest position of a
 *    live subscriber; the other policies move it as far as they need.
 *  - A subscriber acquires `head`, reads the tag, length and sequence number
 *    of the record at its position, validates them, copies, issues an
 *    acquire fence (S2) and re-loads `tail`: if `tail` has passed the record,
 *    the copy may be torn and is thrown away (seqlock).  A value that fails
 *    validation is reported as corrupt only if `tail` has not passed the
 *    record (it was not a racing overwrite).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#include "topic.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define TP_SLOTS_BYTES ((uint64_t)TP_MAX_SLOTS * sizeof(struct tp_slot))
#define TP_ROLE_IDLE 3u /* a slot held by a subscriber that has not joined yet */

/* ---- fork generation: a forked child must not act under its parent's slot */

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

static uint64_t cells_for_length(uint64_t length)
{
    /* Overflow-free: 2^64-1 bytes is 2^58 cells, never a wrapped 0. */
    return length == 0 ? 1 : (length >> TP_CELL_SHIFT) + ((length & (TP_CELL - 1)) != 0);
}

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

static uint64_t meta_bytes(uint64_t ncells)
{
    uint64_t m = ncells * sizeof(struct tp_meta);
    return (m + TP_PAGE - 1) & ~(uint64_t)(TP_PAGE - 1);
}

uint64_t tp_segment_size(uint64_t ncells)
{
    return TP_PAGE + TP_SLOTS_BYTES + meta_bytes(ncells) + ncells * TP_CELL;
}

tp_status tp_format(void *base, uint64_t size, uint64_t ncells, uint32_t policy, uint32_t creator_pid)
{
    if (ncells < TP_MIN_CELLS || ncells > TP_MAX_CELLS || (ncells & (ncells - 1)) != 0)
        return TP_CORRUPT;
    if (policy < TP_LOSSLESS || policy > TP_LATEST || size != tp_segment_size(ncells))
        return TP_CORRUPT;
    struct tp_header *hdr = base;
    memset(base, 0, TP_PAGE + TP_SLOTS_BYTES + meta_bytes(ncells));
    hdr->abi_version = TP_ABI_VERSION;
    hdr->policy = policy;
    hdr->cell_size = TP_CELL;
    hdr->slot_count = TP_MAX_SLOTS;
    hdr->ncells = ncells;
    hdr->segment_size = size;
    hdr->slots_offset = TP_PAGE;
    hdr->meta_offset = TP_PAGE + TP_SLOTS_BYTES;
    hdr->data_offset = TP_PAGE + TP_SLOTS_BYTES + meta_bytes(ncells);
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
        hdr->data_offset != TP_PAGE + TP_SLOTS_BYTES + meta_bytes(n))
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

static inline struct tp_meta *meta_at(const tp_handle *h, uint64_t pos) { return &h->meta[pos & h->mask]; }

/* ---- waking and sleeping */

static _Atomic uint64_t *waiters_word(tp_handle *h, int which)
{
    return which == TP_WAIT_DATA ? &h->hdr->data_waiters
         : which == TP_WAIT_SPACE ? &h->hdr->space_waiters : &h->hdr->lock_waiters;
}

static _Atomic uint32_t *futex_word(tp_handle *h, int which)
{
    return which == TP_WAIT_DATA ? &h->hdr->data_futex
         : which == TP_WAIT_SPACE ? &h->hdr->space_futex : &h->hdr->lock_futex;
}

static int owner_is_live_word(uint64_t owner) { return owner != 0 && owner != TP_OWNER_RELEASING; }

static uint32_t slot_limit(tp_handle *h)
{
    uint32_t hint = a_load(&h->hdr->slot_hint, ACQ);
    return hint > TP_MAX_SLOTS ? TP_MAX_SLOTS : hint;
}

/*
 * Lowers each waiter count to the sleepers of live slots (the argument of
 * csrc/ring_waiters.c: a slot's count is raised before the header's and
 * lowered after it, so a dead process's registration is the only thing a
 * recount can take back; the sequence half makes the CAS fail on any change).
 */
static void recount(tp_handle *h)
{
    for (int which = 0; which < 3; which++) {
        _Atomic uint64_t *word = waiters_word(h, which);
        uint64_t seen = a_load(word, ACQ);
        if (TP_WAITERS_COUNT(seen) == 0)
            continue;
        uint64_t live = 0;
        for (uint32_t i = 0; i < TP_MAX_SLOTS; i++) {
            struct tp_slot *s = &h->slots[i];
            uint64_t owner = a_load(&s->owner, ACQ);
            if (!owner_is_live_word(owner))
                continue;
            uint32_t n = a_load(&s->sleepers[which], ACQ);
            if (n != 0 && rip_owner_alive(owner))
                live += n;
        }
        if (live < TP_WAITERS_COUNT(seen)) {
            uint64_t want = (((seen >> 32) + 1) << 32) | live;
            a_cas(word, &seen, want, ACQ_REL, RLX);
        }
    }
}

/*
 * The futex word's low bit is "armed": a sleeper sets it (F2 side) before it
 * re-checks and sleeps; a notifier (after F1) bumps the word and wakes only
 * if the bit is set, clearing it.  So a burst of publishes (or of reads, for
 * a waiting publisher) makes one wake call, not one per message while the
 * woken sleepers are on their way out; and a sleeper that died leaves at
 * most one wasted call behind.  No wake-up is lost: a notifier that does not
 * see the bit loaded the word before the sleeper's RMW, so (F1/F2) the
 * sleeper's re-check sees the change; one that sees it changes the word, so
 * a sleeper that has not reached FUTEX_WAIT yet fails its compare.  Only
 * notifiers change the value (setting a set bit changes nothing), so a
 * failed CAS means another notifier bumped it and wakes.
 */
static void wake(tp_handle *h, int which)
{
    _Atomic uint32_t *futex = futex_word(h, which);
    uint32_t v = a_load(futex, RLX);
    if (!(v & 1u) || !a_cas(futex, &v, (v + 2u) & ~1u, RLX, RLX))
        return;
    long woken = 1;
#if defined(__linux__)
    woken = syscall(SYS_futex, (uint32_t *)futex, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
#endif
    if (woken != 0) {
        h->idle_wakes[which] = 0;
    } else if (++h->idle_wakes[which] >= TP_RECOUNT_AFTER_IDLE_WAKES) {
        /* The count names someone who never wakes: a sleeper that died. */
        h->idle_wakes[which] = 0;
        recount(h);
    }
}

static tp_status futex_wait(_Atomic uint32_t *word, uint32_t seen, const struct timespec *deadline)
{
#if defined(__linux__)
    long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, seen, deadline, NULL,
                      FUTEX_BITSET_MATCH_ANY);
    if (rc == 0 || errno == EAGAIN)
        return TP_OK;
    if (errno == ETIMEDOUT)
        return TP_TIMEOUT;
    if (errno == EINTR)
        return TP_INTERRUPTED;
    return TP_OK;
#else
    /* No futex: sleep a millisecond at a time (documented in docs/topic.md). */
    struct timespec ms = {0, 1000000};
    (void)word; (void)seen; (void)deadline;
    nanosleep(&ms, NULL);
    return TP_OK;
#endif
}

static int deadline_passed(const struct timespec *deadline)
{
    struct timespec now;
    if (deadline == NULL)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec || (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* ---- slots */

static void bump_hint(tp_handle *h, uint32_t index)
{
    uint32_t hint = a_load(&h->hdr->slot_hint, RLX);
    while (hint < index + 1 && !a_cas(&h->hdr->slot_hint, &hint, index + 1, ACQ_REL, RLX))
        ;
}

static int take_slot(tp_handle *h, uint32_t role)
{
    for (uint32_t i = 0; i < TP_MAX_SLOTS; i++) {
        uint64_t expected = 0;
        struct tp_slot *s = &h->slots[i];
        if (a_load(&s->owner, RLX) != 0)
            continue;
        if (!a_cas(&s->owner, &expected, h->owner, ACQ_REL, RLX))
            continue;
        for (int w = 0; w < 3; w++)
            a_store(&s->sleepers[w], 0, RLX);
        a_store(&s->pos, 0, RLX);
        a_store(&s->role, role, REL);
        bump_hint(h, i);
        h->slot = (int)i;
        return 1;
    }
    return 0;
}

static void give_up_slot(tp_handle *h)
{
    if (h->slot < 0)
        return;
    struct tp_slot *s = &h->slots[h->slot];
    h->slot = -1;
    if (a_load(&s->owner, RLX) != h->owner)
        return; /* taken from us (a corrupt segment): not ours to free */
    a_store(&s->role, TP_ROLE_FREE, RLX);
    a_store(&s->owner, 0, REL);
    /* A lossless publisher may wait for this subscriber. */
    a_fence(SEQ_CST);
    if (TP_WAITERS_COUNT(a_load(&h->hdr->space_waiters, RLX)))
        wake(h, TP_WAIT_SPACE);
}

tp_status tp_open_publisher(tp_handle *h)
{
    h->role = TP_ROLE_PUBLISHER;
    if (h->slot >= 0)
        return TP_OK;
    return take_slot(h, TP_ROLE_PUBLISHER) ? TP_OK : TP_NO_SLOT;
}

void tp_close(tp_handle *h)
{
    tp_forked(h);
    give_up_slot(h);
}

uint32_t tp_live_subscribers(tp_handle *h)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < TP_MAX_SLOTS; i++)
        if (owner_is_live_word(a_load(&h->slots[i].owner, ACQ)) &&
            a_load(&h->slots[i].role, ACQ) == TP_ROLE_SUBSCRIBER)
            n++;
    return n;
}

/* ---- the publisher lock */

static int try_lock(tp_handle *h)
{
    uint64_t expected = 0;
    /* L1 (acquire): pairs with the previous holder's release of the lock, so
     * its head, tail and records are visible. */
    return a_cas(&h->hdr->pub_owner, &expected, h->owner, ACQ, RLX);
}

static void unlock(tp_handle *h, int published)
{
    struct tp_header *hdr = h->hdr;
    /* L2 (release): everything written under the lock. */
    a_store(&hdr->pub_owner, 0, REL);
    a_fence(SEQ_CST); /* F1: pairs with F2 in sleep_on() */
    if (published && TP_WAITERS_COUNT(a_load(&hdr->data_waiters, RLX)))
        wake(h, TP_WAIT_DATA);
    if (TP_WAITERS_COUNT(a_load(&hdr->lock_waiters, RLX)))
        wake(h, TP_WAIT_LOCK);
}

/*
 * The record at `p` as seen by the lock holder (no publisher can change it
 * meanwhile, so a bad value is corruption, not a race).
 */
static tp_status record_at(tp_handle *h, uint64_t p, uint64_t head, uint64_t *cells, int *committed,
                           uint64_t *seq)
{
    struct tp_meta *m = meta_at(h, p);
    uint64_t tag = a_load(&m->tag, ACQ);
    uint64_t off = p & h->mask;
    uint64_t c;
    if (tag == TP_TAG(p, TP_COMMITTED)) {
        uint64_t len = a_load(&m->length, RLX);
        if (len > h->max_message)
            return TP_CORRUPT;
        c = cells_for_length(len);
        *committed = 1;
    } else if (tag == TP_TAG(p, TP_PADDING)) {
        c = a_load(&m->length, RLX);
        if (c != h->ncells - off)
            return TP_CORRUPT;
        *committed = 0;
    } else {
        return TP_CORRUPT;
    }
    if (off + c > h->ncells || c > head - p)
        return TP_CORRUPT;
    *cells = c;
    if (seq)
        *seq = a_load(&m->seq, RLX);
    return TP_OK;
}

/* Lowest position of a live subscriber, clamped to [tail, head]; head if none. */
static uint64_t scan_min(tp_handle *h, uint64_t tail, uint64_t head)
{
    uint64_t low = head;
    uint32_t limit = slot_limit(h);
    for (uint32_t i = 0; i < limit; i++) {
        struct tp_slot *s = &h->slots[i];
        if (!owner_is_live_word(a_load(&s->owner, ACQ)) || a_load(&s->role, ACQ) != TP_ROLE_SUBSCRIBER)
            continue;
        /* R1 (acquire): pairs with the subscriber's release store of pos after
         * its copy, so the copy is done before these cells are overwritten. */
        uint64_t pos = a_load(&s->pos, ACQ);
        if (pos < tail)
            pos = tail; /* cannot be: the subscriber joined at or after tail */
        if (pos < low)
            low = pos;
    }
    return low;
}

/* ---- publishing */

tp_status tp_write_begin(tp_handle *h, uint64_t length, void **dst)
{
    struct tp_header *hdr = h->hdr;
    if (length > h->max_message)
        return TP_TOO_BIG;
    if (!try_lock(h))
        return TP_BUSY;
    uint64_t head = a_load(&hdr->head, RLX), tail = a_load(&hdr->tail, RLX);
    if (tail > head || head - tail > h->ncells || head >= (1ull << 61)) {
        unlock(h, 0);
        return TP_CORRUPT;
    }
    uint64_t cells = cells_for_length(length);
    uint64_t off = head & h->mask;
    uint64_t pad = off + cells > h->ncells ? h->ncells - off : 0;
    uint64_t end = head + pad + cells;
    if (end - tail > h->ncells) {
        uint64_t required = end - h->ncells, new_tail = tail;
        for (uint64_t steps = 0; new_tail < required; steps++) {
            uint64_t c;
            int committed;
            if (steps > h->ncells || record_at(h, new_tail, head, &c, &committed, NULL) != TP_OK) {
                unlock(h, 0);
                return TP_CORRUPT;
            }
            new_tail += c;
        }
        if (h->policy == TP_LOSSLESS) {
            uint64_t free_until = a_load(&hdr->free_until, RLX);
            if (free_until < new_tail || free_until > head) {
                free_until = scan_min(h, tail, head);
                a_store(&hdr->free_until, free_until, RLX);
            }
            if (free_until < new_tail) {
                h->need_tail = new_tail;
                h->full_head = head;
                unlock(h, 0);
                return TP_FULL;
            }
        }
        /* S1: tail before any overwrite; the fence orders the store before the
         * cell and metadata stores that follow (pairs with S2 in readers). */
        a_store(&hdr->tail, new_tail, RLX);
        a_fence(REL);
    }
    h->wr_head = head;
    h->wr_pad = pad;
    h->wr_cells = cells;
    h->wr_length = length;
    *dst = h->data + (((head + pad) & h->mask) << TP_CELL_SHIFT);
    return TP_OK;
}

void tp_write_commit(tp_handle *h)
{
    struct tp_header *hdr = h->hdr;
    uint64_t seq = a_load(&hdr->next_seq, RLX);
    uint64_t p = h->wr_head;
    if (h->wr_pad) {
        struct tp_meta *m = meta_at(h, p);
        a_store(&m->length, h->wr_pad, RLX);
        a_store(&m->seq, seq, RLX);
        a_store(&m->tag, TP_TAG(p, TP_PADDING), REL);
        p += h->wr_pad;
    }
    struct tp_meta *m = meta_at(h, p);
    a_store(&m->length, h->wr_length, RLX);
    a_store(&m->seq, seq, RLX);
    a_store(&m->tag, TP_TAG(p, TP_COMMITTED), REL); /* P1 */
    a_store(&hdr->next_seq, seq + 1, RLX);
    a_store(&hdr->head, p + h->wr_cells, REL); /* P2: the record is published */
    a_store(&hdr->last, p, REL);               /* P3: after head, see docs/topic.md */
    unlock(h, 1);
}

void tp_write_abort(tp_handle *h) { unlock(h, 0); }

/* ---- subscribing */

/* Joins at `pos` under the lock: slot role and position, free_until. */
static void join_at(tp_handle *h, uint64_t pos, uint64_t expected)
{
    struct tp_slot *s = &h->slots[h->slot];
    h->pos = pos;
    h->expected = expected;
    a_store(&s->pos, pos, RLX);
    a_store(&s->role, TP_ROLE_SUBSCRIBER, REL);
    uint64_t free_until = a_load(&h->hdr->free_until, RLX);
    if (pos < free_until)
        a_store(&h->hdr->free_until, pos, RLX);
    h->role = TP_ROLE_SUBSCRIBER;
}

static tp_status subscribe_locked(tp_handle *h, uint64_t history, int at, uint64_t at_pos,
                                  uint64_t at_expected, uint64_t at_seen)
{
    struct tp_header *hdr = h->hdr;
    if (h->slot < 0 && !take_slot(h, TP_ROLE_IDLE))
        return TP_NO_SLOT;
    if (!try_lock(h))
        return TP_BUSY;
    uint64_t head = a_load(&hdr->head, RLX), tail = a_load(&hdr->tail, RLX);
    uint64_t next_seq = a_load(&hdr->next_seq, RLX);
    if (tail > head || head - tail > h->ncells) {
        unlock(h, 0);
        return TP_CORRUPT;
    }
    if (h->policy == TP_LATEST) {
        if (at) {
            h->seen_last = at_seen;
            join_at(h, head, at_expected);
        } else {
            uint64_t last = a_load(&hdr->last, RLX);
            h->seen_last = history > 0 ? TP_NO_RECORD : last;
            join_at(h, head, history > 0 && next_seq > 0 ? next_seq - 1 : next_seq);
        }
        unlock(h, 0);
        return TP_OK;
    }
    if (at) {
        /* A copy of a subscriber in another process: its position if still
         * retained, else the oldest retained record (missed ones are counted
         * from the sequence numbers on the next read). */
        uint64_t pos = at_pos < tail || at_pos > head ? tail : at_pos;
        join_at(h, pos, at_expected);
        unlock(h, 0);
        return TP_OK;
    }
    /* Count the retained messages, then skip all but the last `history`. */
    uint64_t count = 0, p = tail, c, seq;
    int committed;
    for (uint64_t steps = 0; p < head; steps++) {
        if (steps > h->ncells || record_at(h, p, head, &c, &committed, NULL) != TP_OK) {
            unlock(h, 0);
            return TP_CORRUPT;
        }
        count += committed;
        p += c;
    }
    uint64_t skip = history >= count ? 0 : count - history;
    p = tail;
    for (;;) {
        if (p == head) {
            join_at(h, head, next_seq);
            break;
        }
        if (record_at(h, p, head, &c, &committed, &seq) != TP_OK) {
            unlock(h, 0);
            return TP_CORRUPT;
        }
        if (committed && skip == 0) {
            join_at(h, p, seq);
            break;
        }
        skip -= committed;
        p += c;
    }
    unlock(h, 0);
    return TP_OK;
}

tp_status tp_subscribe(tp_handle *h, uint64_t history)
{
    tp_forked(h);
    return subscribe_locked(h, history, 0, 0, 0, 0);
}

tp_status tp_subscribe_at(tp_handle *h, uint64_t pos, uint64_t expected, uint64_t seen_last)
{
    tp_forked(h);
    return subscribe_locked(h, 0, 1, pos, expected, seen_last);
}

/* ---- reading */

/* After a value failed validation: corrupt only if no overwrite can explain it. */
static tp_status unstable_or_corrupt(tp_handle *h, uint64_t p)
{
    a_fence(ACQ); /* S2 */
    return a_load(&h->hdr->tail, RLX) > p ? TP_TORN : TP_CORRUPT;
}

int tp_readable(tp_handle *h)
{
    if (h->policy == TP_LATEST) {
        uint64_t last = a_load(&h->hdr->last, RLX);
        return last != TP_NO_RECORD && last != h->seen_last;
    }
    return a_load(&h->hdr->head, RLX) != h->pos;
}

static tp_status read_latest(tp_handle *h, const void **src, uint64_t *length)
{
    struct tp_header *hdr = h->hdr;
    for (;;) {
        uint64_t l = a_load(&hdr->last, ACQ); /* pairs with P3 (and so P1) */
        if (l == TP_NO_RECORD || l == h->seen_last)
            return TP_EMPTY;
        struct tp_meta *m = meta_at(h, l);
        uint64_t tag = a_load(&m->tag, ACQ);
        uint64_t len = a_load(&m->length, RLX);
        uint64_t seq = a_load(&m->seq, RLX);
        uint64_t off = l & h->mask;
        if (unlikely(tag != TP_TAG(l, TP_COMMITTED) || len > h->max_message ||
                     off + cells_for_length(len) > h->ncells || seq < h->expected)) {
            if (unstable_or_corrupt(h, l) == TP_CORRUPT)
                return TP_CORRUPT;
            /* Overwritten.  Read again only if a newer record was published
             * since (so this loop repeats only after a publisher moved on);
             * else the newest record is being replaced by one not yet
             * complete - or by a publisher that died - and there is nothing
             * intact to read until the next publish. */
            if (a_load(&hdr->last, ACQ) != l)
                continue;
            h->seen_last = l;
            return TP_EMPTY;
        }
        h->rd_pos = l;
        h->rd_seq = seq;
        h->rd_length = len;
        *src = h->data + (off << TP_CELL_SHIFT);
        *length = len;
        return TP_OK;
    }
}

tp_status tp_read_begin(tp_handle *h, const void **src, uint64_t *length)
{
    struct tp_header *hdr = h->hdr;
    if (h->policy == TP_LATEST)
        return read_latest(h, src, length);
    uint64_t p = h->pos;
    for (;;) {
        uint64_t head = a_load(&hdr->head, ACQ); /* A1: pairs with P2 */
        if (p == head)
            break;
        if (unlikely(p > head))
            return TP_CORRUPT; /* head never moves back, and p came from it or tail */
        if (unlikely(head - p > h->ncells))
            goto lapped;
        struct tp_meta *m = meta_at(h, p);
        uint64_t tag = a_load(&m->tag, ACQ);
        uint64_t off = p & h->mask;
        if (likely(tag == TP_TAG(p, TP_COMMITTED))) {
            uint64_t len = a_load(&m->length, RLX);
            uint64_t seq = a_load(&m->seq, RLX);
            uint64_t c = cells_for_length(len);
            if (unlikely(len > h->max_message || off + c > h->ncells || c > head - p || seq < h->expected)) {
                if (unstable_or_corrupt(h, p) == TP_CORRUPT)
                    return TP_CORRUPT;
                goto lapped;
            }
            h->pos = p;
            h->rd_pos = p;
            h->rd_next = p + c;
            h->rd_seq = seq;
            h->rd_length = len;
            *src = h->data + (off << TP_CELL_SHIFT);
            *length = len;
            return TP_OK;
        }
        if (tag == TP_TAG(p, TP_PADDING)) {
            uint64_t c = a_load(&m->length, RLX);
            if (unlikely(c != h->ncells - off || c > head - p)) {
                if (unstable_or_corrupt(h, p) == TP_CORRUPT)
                    return TP_CORRUPT;
                goto lapped;
            }
            a_fence(ACQ); /* S2: the padding was still this lap's */
            if (unlikely(a_load(&hdr->tail, RLX) > p))
                goto lapped;
            p += c;
            continue;
        }
        if (unstable_or_corrupt(h, p) == TP_CORRUPT)
            return TP_CORRUPT;
    lapped: {
            /* Overwritten before we read it (drop-oldest): go on at the
             * oldest retained record; the gap shows in the sequence numbers. */
            uint64_t t = a_load(&hdr->tail, ACQ);
            if (t <= p)
                return TP_CORRUPT; /* head - p > ncells with tail <= p breaks the invariant */
            p = t;
        }
    }
    h->pos = p;
    return TP_EMPTY;
}

tp_status tp_read_end(tp_handle *h)
{
    struct tp_header *hdr = h->hdr;
    a_fence(ACQ); /* S2: the copy's loads before the re-load of tail */
    uint64_t tail = a_load(&hdr->tail, RLX);
    if (unlikely(tail > h->rd_pos)) {
        /* A publisher may have overwritten part of what was copied. */
        h->torn++;
        if (h->policy != TP_LATEST)
            h->pos = tail;
        else
            h->seen_last = h->rd_pos; /* counted as missed once a newer one is read */
        return TP_TORN;
    }
    h->missed += h->rd_seq - h->expected;
    h->expected = h->rd_seq + 1;
    if (h->policy == TP_LATEST) {
        h->seen_last = h->rd_pos;
        return TP_OK;
    }
    h->pos = h->rd_next;
    if (h->policy == TP_LOSSLESS && h->slot >= 0) {
        /* R1: release, the copy before the publisher's reuse of the cells. */
        a_store(&h->slots[h->slot].pos, h->pos, REL);
        a_fence(SEQ_CST); /* F1 for waiting publishers */
        if (TP_WAITERS_COUNT(a_load(&hdr->space_waiters, RLX)))
            wake(h, TP_WAIT_SPACE);
    }
    return TP_OK;
}

/* ---- waiting */

static int lock_free(tp_handle *h) { return a_load(&h->hdr->pub_owner, RLX) == 0; }

static int space_ready(tp_handle *h)
{
    struct tp_header *hdr = h->hdr;
    uint64_t head = a_load(&hdr->head, ACQ);
    if (head != h->full_head)
        return 1; /* another publisher moved on: try again */
    return scan_min(h, a_load(&hdr->tail, ACQ), head) >= h->need_tail;
}

static int ready(tp_handle *h, int which)
{
    return which == TP_WAIT_DATA ? tp_readable(h) : which == TP_WAIT_SPACE ? space_ready(h) : lock_free(h);
}

static tp_status sleep_on(tp_handle *h, int which, const struct timespec *deadline, uint32_t spin)
{
    for (uint32_t i = 0; i < spin; i++) {
        if (ready(h, which))
            return TP_OK;
        cpu_relax();
    }
    if (deadline_passed(deadline))
        return TP_TIMEOUT;
    if (h->slot < 0) {
        if (!take_slot(h, TP_ROLE_IDLE))
            return TP_NO_SLOT;
    }
    struct tp_slot *s = &h->slots[h->slot];
    _Atomic uint64_t *waiters = waiters_word(h, which);
    _Atomic uint32_t *futex = futex_word(h, which);
    a_fetch_add(&s->sleepers[which], 1, RLX);             /* W1 via the RMW below */
    a_fetch_add(waiters, TP_WAITERS_REGISTER, SEQ_CST);
    uint32_t seen = atomic_fetch_or_explicit(futex, 1u, SEQ_CST) | 1u; /* arm: see wake() */
    a_fence(SEQ_CST); /* F2 */
    tp_status st = ready(h, which) ? TP_OK : futex_wait(futex, seen, deadline);
    a_fetch_add(waiters, TP_WAITERS_UNREGISTER, SEQ_CST);
    a_fetch_sub(&s->sleepers[which], 1, REL);             /* W2 */
    return st;
}

tp_status tp_wait_readable(tp_handle *h, const struct timespec *deadline, uint32_t spin)
{
    return sleep_on(h, TP_WAIT_DATA, deadline, spin);
}

tp_status tp_wait_writable(tp_handle *h, tp_status why, const struct timespec *deadline, uint32_t spin)
{
    return sleep_on(h, why == TP_FULL ? TP_WAIT_SPACE : TP_WAIT_LOCK, deadline, spin);
}

/* ---- dead processes */

int tp_recover(tp_handle *h)
{
    struct tp_header *hdr = h->hdr;
    int freed = 0;
    uint64_t holder = a_load(&hdr->pub_owner, ACQ);
    if (holder != 0 && holder != h->owner && !rip_owner_alive(holder)) {
        /* Killed while publishing: nothing it wrote is published (head is
         * stored last), so the next holder simply starts at head. */
        if (a_cas(&hdr->pub_owner, &holder, 0, ACQ_REL, RLX))
            freed++;
    }
    for (uint32_t i = 0; i < TP_MAX_SLOTS; i++) {
        struct tp_slot *s = &h->slots[i];
        uint64_t owner = a_load(&s->owner, ACQ);
        if (!owner_is_live_word(owner) || owner == h->owner || rip_owner_alive(owner))
            continue;
        /* Mark it being released first, so that no joiner can take it while
         * its role and counts are reset. */
        if (!a_cas(&s->owner, &owner, TP_OWNER_RELEASING, ACQ_REL, RLX))
            continue;
        a_store(&s->role, TP_ROLE_FREE, RLX);
        for (int w = 0; w < 3; w++)
            a_store(&s->sleepers[w], 0, RLX);
        a_store(&s->owner, 0, REL);
        freed++;
    }
    recount(h);
    if (freed) {
        a_fence(SEQ_CST);
        wake(h, TP_WAIT_LOCK);
        wake(h, TP_WAIT_SPACE);
    }
    return freed;
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
    out[12] = TP_PAGE + TP_SLOTS_BYTES + meta_bytes(h->ncells);
}
