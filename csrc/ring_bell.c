/*
 * Doorbells: readiness of a ring as a file descriptor, paid for only while
 * somebody waits on one.
 *
 * A process that wants to poll a ring (an event loop, multiprocessing's
 * wait(), selectors) binds an abstract-namespace AF_UNIX datagram socket
 * named "\0ringipc-bell-<16 hex digits>" and writes the 64-bit name into its
 * slot (data_bell for readers, space_bell for writers waiting for room).
 * Before it polls, it *arms* the bell: sets its slot's bit in the header's
 * bitmap, counts it in *_bells_armed, fences and re-checks the ring
 * (rip_bell_arm in ring_wait.c).  notify() - run by every commit and release
 * that wakes - loads *_bells_armed beside the futex waiter count it already
 * loads; if it is non-zero it takes each armed bit (fetch_and: exactly one
 * notifier wins it) and sends one datagram to that slot's bell.  A ring is
 * one-shot: the watcher re-arms after it has looked at the ring again.
 *
 * Lost wake-up argument: as for futex sleepers (ring_wait.c).  The watcher
 * does  bit |= me ; armed++ ; F2 ; check ; poll(fd)  and the notifier
 * change ; F1 ; if (armed) { take bits ; send }.  If the notifier saw
 * armed == 0, the watcher's increment follows F1 and its check sees the
 * change.  Every increment follows a 0->1 transition of a bit and every
 * decrement a 1->0 one, so the count is non-zero whenever a bit is set and
 * its watcher has passed its check (it may be briefly "negative" - a wrapped
 * u32 - while a notifier's decrement overtakes an increment; non-zero then
 * only costs one scan).
 *
 * Why abstract sockets: a process that dies (SIGKILL included) takes its
 * socket, and with it the name, with it; nothing is left in the filesystem or
 * /dev/shm.  A name nobody holds makes sendto fail with ECONNREFUSED, which
 * is ignored: the bit was already taken, so a dead watcher costs notifiers
 * one failed send, once, and nothing after.  A slot taken over from a dead
 * process has its bells forgotten (rip_bell_forget).  A full receive queue
 * (EAGAIN) means the bell already rings.  Abstract names live in a network
 * namespace: processes sharing a ring across network namespaces cannot ring
 * each other (they still see messages; only their descriptors stay dark).
 *
 * The armed bitmap, the names and the sending socket are the shared
 * mechanism of csrc/bell.c (topics use it too, csrc/topic_bell.c).
 */
#include "ring_internal.h"

static inline _Atomic uint64_t *bell_bits(rip_ring *ring, int writers)
{
    return writers ? ring->hdr->space_bells : ring->hdr->data_bells;
}

static inline _Atomic uint32_t *bell_count(rip_ring *ring, int writers)
{
    return writers ? &ring->hdr->space_bells_armed : &ring->hdr->data_bells_armed;
}

void rip_ring_bells(rip_ring *ring, int writers)
{
    struct rip_slot *first = &ring->slots[0];
    rip_bells_ring(bell_bits(ring, writers), RIP_MAX_SLOTS / 64, bell_count(ring, writers),
                   writers ? &first->space_bell : &first->data_bell, sizeof(struct rip_slot));
}

static void disarm_index(rip_ring *ring, int writers, uint32_t index)
{
    rip_bells_clear(bell_bits(ring, writers), bell_count(ring, writers), index);
}

static inline uint32_t slot_index(rip_ring *ring, struct rip_slot *slot)
{
    return (uint32_t)(slot - ring->slots);
}

void rip_bell_forget(rip_ring *ring, struct rip_slot *slot)
{
    uint32_t index = slot_index(ring, slot);
    a_store(&slot->data_bell, 0, RLX);
    a_store(&slot->space_bell, 0, RLX);
    disarm_index(ring, 0, index);
    disarm_index(ring, 1, index);
}

/* Callers hold a wait slot (rip_ensure_wait_slot) and serialise per handle. */
rip_status rip_bell_install(rip_ring *ring, int writer, uint64_t name)
{
    struct rip_slot *slot = ring->slot;
    if (slot == NULL || ring->fork_generation != rip_fork_generation)
        return RIP_NO_SLOT;
    _Atomic uint64_t *word = writer ? &slot->space_bell : &slot->data_bell;
    if (name == 0)
        disarm_index(ring, writer, slot_index(ring, slot));
    else if (a_load(word, RLX) != 0)
        return RIP_BUSY; /* one bell per handle and direction: another is installed */
    /* Release: published to notifiers by the fetch_or of the next arm. */
    a_store(word, name, REL);
    return RIP_OK;
}

void rip_bell_disarm(rip_ring *ring, int writer)
{
    if (ring->slot == NULL || ring->fork_generation != rip_fork_generation)
        return; /* inherited handles' bells belong to the parent */
    disarm_index(ring, writer, slot_index(ring, ring->slot));
}

int rip_bell_set_armed(rip_ring *ring, int writer)
{
    struct rip_slot *slot = ring->slot;
    if (slot == NULL || ring->fork_generation != rip_fork_generation)
        return -1;
    rip_bells_set(bell_bits(ring, writer), bell_count(ring, writer), slot_index(ring, slot));
    return 0;
}
