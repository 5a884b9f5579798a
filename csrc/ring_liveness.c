/*
 * Whether the process that took a role, a slot or recovery is still running.
 *
 * A pid alone cannot say: once a holder dies its pid may be given to an
 * unrelated process, and a kill(pid, 0) check would then wait for a claim of
 * the dead holder forever.  A process is therefore named by its pid *and its
 * start time* (field 22 of /proc/<pid>/stat, clock ticks since boot), packed
 * into one 64-bit owner word (RIP_OWNER in ring_layout.h).  Two processes
 * that hold the same pid at different times have different start times: a
 * pid is reused only after its previous holder has been reaped, and pids are
 * handed out in turn, so the newcomer starts ticks later unless every pid
 * was used up within one tick.
 *
 * Only the low 32 bits of the start time are kept, so the word can be taken
 * and given up with one CAS (no window where a pid is paired with another
 * process's start time).  A false match needs the new process to start at
 * exactly the same tick modulo 2^32 ticks (497 days at 100 Hz) - and a false
 * match only means waiting for the holder, what a pid-only check always did.
 *
 * Start stamp 0 means "unknown" (no /proc, or a start time whose low bits are
 * 0): such an owner is checked by pid alone.  Likewise, if the holder's start
 * time cannot be read now, the pid check decides.  Every fallback errs
 * towards "alive": a live holder must never be taken for dead, since that
 * would pad over its claim or steal its role while it still writes.
 *
 * Values read from shared memory are only compared: the pid goes to kill()
 * (after a check that it is positive: kill(-1, 0) addresses every process)
 * and into a /proc path, the start stamp is compared and nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ring_internal.h"

enum stat_result { STAT_GONE, STAT_UNREADABLE, STAT_READ };

/* The fields of /proc/<pid>/stat that liveness needs. */
struct proc_stat {
    char state;        /* field 3: 'Z' zombie, 'X' dead, ... */
    int have_start;
    uint64_t start;    /* field 22: start time, clock ticks since boot */
};

/*
 * Parses "pid (comm) state ppid ... starttime ...".  comm is chosen by the
 * process (prctl, /proc/self/comm) and may hold spaces and parentheses, so
 * fields are counted from the *last* ')': nothing after comm contains one.
 */
static int parse_stat(char *buf, struct proc_stat *out)
{
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ' || p[2] == '\0')
        return 0;
    p += 2;
    out->state = *p;
    out->have_start = 0;
    for (int field = 3; field < 22; field++) { /* step from field 3 to 22 */
        p = strchr(p, ' ');
        if (p == NULL)
            return 1; /* state known, start not: the pid check decides */
        p++;
    }
    uint64_t v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (v > (UINT64_MAX - 9) / 10)
            return 1; /* not a tick count this kernel could produce */
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (digits > 0 && (*p == ' ' || *p == '\n' || *p == '\0')) {
        out->start = v;
        out->have_start = 1;
    }
    return 1;
}

static enum stat_result read_stat(const char *path, struct proc_stat *out)
{
    /* pid and comm (at most 64 bytes for kernel threads) plus 20 numeric
     * fields of at most 20 digits each fit with room to spare. */
    char buf[1024];
    size_t used = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? STAT_GONE : STAT_UNREADABLE;
    while (used < sizeof(buf) - 1) {
        ssize_t n = read(fd, buf + used, sizeof(buf) - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            /* The process exited between open and read. */
            int gone = errno == ESRCH;
            close(fd);
            return gone ? STAT_GONE : STAT_UNREADABLE;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';
    return parse_stat(buf, out) ? STAT_READ : STAT_UNREADABLE;
}

/* The kept low bits of a start time; 0 stays "unknown" on both sides. */
static uint32_t start_stamp(const struct proc_stat *st)
{
    return st->have_start ? (uint32_t)st->start : 0;
}

uint32_t rip_process_start(int32_t pid)
{
    char path[64];
    struct proc_stat st;
    if (pid <= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    return read_stat(path, &st) == STAT_READ ? start_stamp(&st) : 0;
}

/*
 * This process's owner word, read from /proc once per process.  The cache
 * holds the pid it was made for: after fork() the child's getpid() differs,
 * so the child reads its own start time instead of using the parent's
 * (rip_ring's fork generation decides *when* a handle asks again; this
 * check makes the answer right even for a caller that did not notice).
 * Threads racing to fill the cache compute and store the same value.  An
 * unreadable /proc is cached too (start 0: checked by pid alone), so every
 * handle of one process names it with the same word.
 */
static _Atomic uint64_t self_owner;

uint64_t rip_self_owner(void)
{
    uint32_t pid = (uint32_t)getpid();
    uint64_t cached = a_load(&self_owner, RLX);
    if (cached != 0 && RIP_OWNER_PID(cached) == pid)
        return cached;
    struct proc_stat st;
    uint32_t start = read_stat("/proc/self/stat", &st) == STAT_READ ? start_stamp(&st) : 0;
    uint64_t owner = RIP_OWNER(pid, start);
    a_store(&self_owner, owner, RLX);
    return owner;
}

int rip_pid_alive(int32_t pid, uint32_t start)
{
    char path[64];
    struct proc_stat st;
    if (pid <= 0)
        return 0;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    switch (read_stat(path, &st)) {
    case STAT_GONE:
        return 0;
    case STAT_UNREADABLE:
        return 1; /* no /proc to ask: kill() said the pid exists */
    case STAT_READ:
        break;
    }
    /* An unreaped zombie still answers kill(); it will never finish a claim. */
    if (st.state == 'Z' || st.state == 'X')
        return 0;
    /* The pid is running, but is it the process that recorded it? */
    if (start != 0 && start_stamp(&st) != 0 && start_stamp(&st) != start)
        return 0;
    return 1;
}

int rip_owner_alive(uint64_t owner)
{
    return rip_pid_alive((int32_t)RIP_OWNER_PID(owner), RIP_OWNER_START(owner));
}
