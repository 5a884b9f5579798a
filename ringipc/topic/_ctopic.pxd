# Declarations of csrc/topic.h for ringipc/topic/_topic.pyx (no code).
from libc.stdint cimport uint32_t, uint64_t
from posix.time cimport timespec

cdef extern from "topic.h" nogil:
    enum:
        TP_LOSSLESS
        TP_DROP_OLDEST
        TP_LATEST
        TP_MAX_SLOTS
        TP_CELL
        TP_ABI_VERSION
        TP_ROLE_SUBSCRIBER
        TP_ROLE_PUBLISHER
    ctypedef enum tp_status:
        TP_OK
        TP_EMPTY
        TP_FULL
        TP_BUSY
        TP_TOO_BIG
        TP_CORRUPT
        TP_TIMEOUT
        TP_INTERRUPTED
        TP_NO_SLOT
        TP_TORN
    struct tp_header:
        pass
    ctypedef struct tp_handle:
        tp_header *hdr
        unsigned char *data
        uint64_t ncells
        uint64_t mask
        uint64_t max_message
        uint64_t size
        uint32_t policy
        int slot
        uint32_t role
        uint64_t pos
        uint64_t expected
        uint64_t missed
        uint64_t torn
        uint64_t seen_last
        uint64_t rd_pos
        uint64_t rd_seq
        uint64_t rd_length

    uint64_t tp_cells_for_capacity(uint64_t capacity)
    uint64_t tp_segment_size(uint64_t ncells)
    tp_status tp_format(void *base, uint64_t size, uint64_t ncells, uint32_t policy, uint32_t creator_pid)
    tp_status tp_attach(tp_handle *h, void *base, uint64_t size, const char **why)
    uint32_t tp_creator_pid(const void *base, uint64_t size)
    tp_status tp_open_publisher(tp_handle *h)
    tp_status tp_subscribe(tp_handle *h, uint64_t history)
    tp_status tp_subscribe_at(tp_handle *h, uint64_t pos, uint64_t expected, uint64_t seen_last)
    void tp_close(tp_handle *h)
    int tp_forked(tp_handle *h)
    tp_status tp_write_begin(tp_handle *h, uint64_t length, void **dst)
    void tp_write_commit(tp_handle *h)
    void tp_write_abort(tp_handle *h)
    tp_status tp_read_begin(tp_handle *h, const void **src, uint64_t *length)
    tp_status tp_read_end(tp_handle *h)
    int tp_readable(tp_handle *h)
    tp_status tp_wait_readable(tp_handle *h, const timespec *deadline, uint32_t spin)
    tp_status tp_wait_writable(tp_handle *h, tp_status why, const timespec *deadline, uint32_t spin)
    int tp_recover(tp_handle *h)
    uint32_t tp_live_subscribers(tp_handle *h)
    tp_status tp_bell_install(tp_handle *h, int writer, uint64_t name)
    int tp_bell_arm(tp_handle *h, int writer)
    void tp_bell_disarm(tp_handle *h, int writer)
    enum:
        TP_DEBUG_WORDS
    void tp_debug_state(tp_handle *h, uint64_t *out)
    uint64_t rip_self_owner()
    int rip_owner_alive(uint64_t owner)
    const char *rip_wait_backend_name()
    int rip_chaos_build()

cdef extern from "ring.h" nogil:
    const char *RIP_BELL_PREFIX
    int rip_bell_sender_fd()
