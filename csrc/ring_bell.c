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
 * The sending socket is one per process, made on first use.  The program
 * may close its descriptor (a closerange()), and the number may then be
 * reused for one of its own connected sockets - into which sendto would
 * write.  So the socket's inode is kept beside it and checked (fstat) before
 * every use: one system call, against the two of a socket made per ringing.
 * An inode that differs means the descriptor is no longer ours: it is
 * forgotten (not closed: it belongs to whoever has it now) and a new socket
 * is made.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ring_internal.h"

static inline _Atomic uint64_t *bell_bits(rip_ring *ring, int writers)
{
    return writers ? ring->hdr->space_bells : ring->hdr->data_bells;
}

static inline _Atomic uint32_t *bell_count(rip_ring *ring, int writers)
{
    return writers ? &ring->hdr->space_bells_armed : &ring->hdr->data_bells_armed;
}

/* The process's sending socket: descriptor and inode, published together
 * as one 64-bit word (inode low 32 bits | fd << 32) so that no reader ever
 * pairs one socket's descriptor with another's inode.  0: none yet. */
static _Atomic uint64_t sender;

static int sender_fd(void)
{
    struct stat st;
    uint64_t word = a_load(&sender, ACQ);
    if (word != 0) {
        int fd = (int)(word >> 32);
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && (uint32_t)st.st_ino == (uint32_t)word)
            return fd;
        /* Closed under us (and perhaps reused): not ours any more. */
        a_cas(&sender, &word, 0, ACQ_REL, RLX);
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1; /* out of descriptors: the watcher's own deadline still holds */
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    uint64_t mine = (uint64_t)(uint32_t)fd << 32 | (uint32_t)st.st_ino, none = 0;
    if (!a_cas(&sender, &none, mine, ACQ_REL, ACQ)) {
        close(fd); /* another thread's socket won: check and use that one */
        return sender_fd();
    }
    return fd;
}

int rip_bell_sender_fd(void)
{
    uint64_t word = a_load(&sender, ACQ);
    return word ? (int)(word >> 32) : -1;
}

static void send_bell(int *fd, uint64_t name)
{
    struct sockaddr_un addr;
    char byte = 1;
    if (*fd < 0 && (*fd = sender_fd()) < 0)
        return;
    addr.sun_family = AF_UNIX;
    addr.sun_path[0] = '\0';
    int n = snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, RIP_BELL_PREFIX "%016llx",
                     (unsigned long long)name);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    /* Errors are not ours to report: ECONNREFUSED (the watcher is gone),
     * EAGAIN (its queue is full: it already rings). */
    (void)sendto(*fd, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&addr, len);
}

void rip_ring_bells(rip_ring *ring, int writers)
{
    _Atomic uint64_t *words = bell_bits(ring, writers);
    int fd = -1;
    for (uint32_t w = 0; w < RIP_MAX_SLOTS / 64; w++) {
        uint64_t bits = a_load(&words[w], RLX);
        while (bits) {
            uint32_t i = (uint32_t)__builtin_ctzll(bits);
            uint64_t bit = 1ull << i;
            bits &= bits - 1;
            /* Acquire: pairs with the watcher's seq_cst fetch_or, after
             * which its bell name is visible. */
            if (!(a_fetch_and(&words[w], ~bit, ACQ_REL) & bit))
                continue; /* another notifier took it */
            a_fetch_sub(bell_count(ring, writers), 1, RLX);
            struct rip_slot *slot = &ring->slots[w * 64 + i];
            uint64_t name = a_load(writers ? &slot->space_bell : &slot->data_bell, ACQ);
            if (name != 0)
                send_bell(&fd, name);
        }
    }
}

static void disarm_index(rip_ring *ring, int writers, uint32_t index)
{
    uint64_t bit = 1ull << (index % 64);
    if (a_fetch_and(&bell_bits(ring, writers)[index / 64], ~bit, SEQ_CST) & bit)
        a_fetch_sub(bell_count(ring, writers), 1, RLX);
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
    uint32_t index = slot_index(ring, slot);
    uint64_t bit = 1ull << (index % 64);
    /* Both seq_cst: the watcher's first step of the F1/F2 pair. */
    if (!(a_fetch_or(&bell_bits(ring, writer)[index / 64], bit, SEQ_CST) & bit))
        a_fetch_add(bell_count(ring, writer), 1, SEQ_CST);
    return 0;
}
