/*
 * The doorbell mechanism, for every shared structure that offers readiness
 * as a file descriptor (rings: csrc/ring_bell.c; topics: csrc/topic_bell.c).
 * The protocol and the lost wake-up argument are in csrc/ring_bell.c; this
 * file is what they share, over a structure's own words:
 *
 *   - an armed bitmap (bit i: slot i's bell is armed) and its count, which a
 *     notifier loads after its F1 fence and scans only when non-zero;
 *   - one 64-bit bell name per slot, at a fixed stride from the first;
 *   - the process's one sending socket and the datagram itself.
 *
 * The sending socket is one per process (per extension that links this file),
 * made on first use.  The program may close its descriptor (a closerange()),
 * and the number may then be reused for one of its own connected sockets -
 * into which sendto would write.  So the socket's inode is kept beside it and
 * checked (fstat) before every use: one system call, against the two of a
 * socket made per ringing.  An inode that differs means the descriptor is no
 * longer ours: it is forgotten (not closed: it belongs to whoever has it now)
 * and a new socket is made.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ring_internal.h"

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

void rip_bells_ring(_Atomic uint64_t *words, uint32_t nwords, _Atomic uint32_t *count,
                    _Atomic uint64_t *first_name, size_t stride)
{
    int fd = -1;
    for (uint32_t w = 0; w < nwords; w++) {
        uint64_t bits = a_load(&words[w], RLX);
        while (bits) {
            uint32_t i = (uint32_t)__builtin_ctzll(bits);
            uint64_t bit = 1ull << i;
            bits &= bits - 1;
            /* Acquire: pairs with the watcher's seq_cst fetch_or, after
             * which its bell name is visible. */
            if (!(a_fetch_and(&words[w], ~bit, ACQ_REL) & bit))
                continue; /* another notifier took it */
            a_fetch_sub(count, 1, RLX);
            _Atomic uint64_t *slot_name =
                (_Atomic uint64_t *)((unsigned char *)first_name + (size_t)(w * 64 + i) * stride);
            uint64_t name = a_load(slot_name, ACQ);
            if (name != 0)
                send_bell(&fd, name);
        }
    }
}

void rip_bells_clear(_Atomic uint64_t *words, _Atomic uint32_t *count, uint32_t index)
{
    uint64_t bit = 1ull << (index % 64);
    if (a_fetch_and(&words[index / 64], ~bit, SEQ_CST) & bit)
        a_fetch_sub(count, 1, RLX);
}

void rip_bells_set(_Atomic uint64_t *words, _Atomic uint32_t *count, uint32_t index)
{
    uint64_t bit = 1ull << (index % 64);
    /* Both seq_cst: the watcher's first step of the F1/F2 pair. */
    if (!(a_fetch_or(&words[index / 64], bit, SEQ_CST) & bit))
        a_fetch_add(count, 1, SEQ_CST);
}
