/*
 * Thin names for the C11 atomics the ring uses.  Every call site still spells
 * out its memory order: the wrapper only shortens the line, it never picks an
 * order for you.  `volatile` is never used for synchronisation.
 */
#ifndef RINGIPC_ATOMICS_H
#define RINGIPC_ATOMICS_H

#include <stdatomic.h>
#include <stdint.h>

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release
#define ACQ_REL memory_order_acq_rel
#define SEQ_CST memory_order_seq_cst

#define a_load(ptr, order) atomic_load_explicit((ptr), (order))
#define a_store(ptr, val, order) atomic_store_explicit((ptr), (val), (order))
#define a_exchange(ptr, val, order) atomic_exchange_explicit((ptr), (val), (order))
#define a_fetch_add(ptr, val, order) atomic_fetch_add_explicit((ptr), (val), (order))
#define a_fetch_sub(ptr, val, order) atomic_fetch_sub_explicit((ptr), (val), (order))
#define a_fetch_or(ptr, val, order) atomic_fetch_or_explicit((ptr), (val), (order))
#define a_fetch_and(ptr, val, order) atomic_fetch_and_explicit((ptr), (val), (order))
/* Strong CAS: a spurious failure would make a waiter re-scan for nothing. */
#define a_cas(ptr, expected_ptr, desired, success, failure) \
    atomic_compare_exchange_strong_explicit((ptr), (expected_ptr), (desired), (success), (failure))
#define a_fence(order) atomic_thread_fence(order)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
