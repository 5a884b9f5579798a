# Declarations of csrc/ring.h and csrc/ring_layout.h, nothing else: the
# segment layout is defined once, in C.
from libc.stdint cimport uint32_t, uint64_t, int32_t
from posix.time cimport timespec


cdef extern from "ring_layout.h" nogil:
    enum:
        RIP_KIND_SPSC
        RIP_KIND_MPMC
        RIP_FLAG_WRITER_CLOSED
        RIP_FLAG_READER_CLOSED
        RIP_CELL
        RIP_MAX_SLOTS
        RIP_ABI_VERSION

    uint64_t RIP_OWNER(uint32_t pid, uint32_t start)
    uint32_t RIP_OWNER_PID(uint64_t owner)
    uint32_t RIP_OWNER_START(uint64_t owner)

    struct rip_header:
        uint32_t abi_version
        uint32_t kind
        uint64_t ncells
        int32_t creator_pid
        uint64_t head
        uint64_t cons
        uint64_t release
        uint64_t data_waiters
        uint64_t space_waiters
        uint32_t data_bells_armed
        uint32_t space_bells_armed
        uint64_t spsc_producer
        uint64_t spsc_consumer
        uint64_t recovery_owner

    struct rip_slot:
        uint64_t owner
        uint32_t data_sleepers
        uint32_t space_sleepers
        uint64_t data_bell
        uint64_t space_bell

    struct rip_meta:
        uint64_t tag
        uint64_t length


cdef extern from "ring.h" nogil:
    ctypedef enum rip_status:
        RIP_OK
        RIP_EMPTY
        RIP_FULL
        RIP_TIMEOUT
        RIP_INTERRUPTED
        RIP_TOO_BIG
        RIP_CORRUPT
        RIP_CLOSED
        RIP_BUSY
        RIP_NO_SLOT
        RIP_BAD_ARGUMENT

    enum:
        RIP_RECOUNT_AFTER_IDLE_WAKES
        RIP_RECOUNT_AFTER_SKIPPED_WAKES

    ctypedef struct rip_ring:
        rip_header *hdr
        rip_slot *slots
        rip_meta *meta
        unsigned char *data
        uint64_t ncells
        uint64_t max_message
        int multi

    ctypedef struct rip_desc:
        uint64_t length
        unsigned char *data

    uint64_t rip_cells_for_capacity(uint64_t capacity_bytes)
    uint64_t rip_segment_size(uint64_t ncells)
    rip_status rip_format(void *base, uint64_t segment_size, uint64_t ncells, uint32_t kind, int32_t creator_pid)
    rip_status rip_attach(rip_ring *ring, void *base, uint64_t segment_size, const char **why)

    rip_status rip_write_begin(rip_ring *ring, uint64_t length, rip_desc *desc)
    void rip_write_commit(rip_ring *ring, const rip_desc *desc, int notify)
    void rip_write_abort(rip_ring *ring, const rip_desc *desc)
    rip_status rip_read_begin(rip_ring *ring, rip_desc *desc)
    void rip_read_end(rip_ring *ring, const rip_desc *desc, int notify)
    void rip_read_done(rip_ring *ring, const rip_desc *desc)
    void rip_read_publish(rip_ring *ring)

    ctypedef struct rip_msg:
        const void *data
        uint64_t length
    enum:
        RIP_BATCH_MAX
    rip_status rip_write_many(rip_ring *ring, const rip_msg *msgs, size_t n, size_t *written)
    void rip_notify_readers(rip_ring *ring)
    void rip_notify_writers(rip_ring *ring)

    int rip_readable(rip_ring *ring)
    int rip_writable(rip_ring *ring, uint64_t length)
    uint64_t rip_read_position(rip_ring *ring)
    uint64_t rip_used_bytes(rip_ring *ring)
    rip_status rip_wait_readable(rip_ring *ring, const timespec *deadline, uint32_t spin_iterations)
    rip_status rip_wait_writable(rip_ring *ring, uint64_t length, const timespec *deadline, uint32_t spin_iterations)
    rip_status rip_ensure_wait_slot(rip_ring *ring)
    void rip_recount_sleepers(rip_ring *ring)

    const char *RIP_BELL_PREFIX
    rip_status rip_bell_install(rip_ring *ring, int writer, uint64_t name)
    int rip_bell_arm(rip_ring *ring, int writer, uint64_t length)
    void rip_bell_disarm(rip_ring *ring, int writer)
    int rip_spin_ready(rip_ring *ring, int writer, uint64_t length, uint64_t spin_ns)
    int rip_bell_sender_fd()

    void rip_close_side(rip_ring *ring, uint32_t flag)
    uint32_t rip_flags(rip_ring *ring)
    void rip_release_roles(rip_ring *ring)
    rip_status rip_recover(rip_ring *ring, uint32_t *recovered)
    int rip_pid_alive(int32_t pid, uint32_t start)
    uint32_t rip_process_start(int32_t pid)
    const char *rip_wait_backend_name()
    int rip_chaos_build()
    int rip_chaos_stop_at_batch_tag(long index)
    void rip_debug_count_recovery(int delta)
