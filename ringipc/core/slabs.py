"""A bounded pool of reused side segments ("slabs") for large messages.

A message too large for the ring (or an out-of-band frame, mp/oob.py) is
written into a slab of the sending process's pool, and only a small reference
goes into the ring.  Slabs are created once and reused: after the first few
objects, a large put costs no ``shm_open``/``ftruncate``/``mmap``/``unlink``
and no page faults, only the copy.  The receiver maps each slab on first use
and keeps the mapping (``Reader``), so it too makes no system call per object.

Each slab starts with one atomic word, ``generation << 2 | state``:

* FREE: the sender may write it (only the sender's own process ever does).
* FULL: written and committed (release store), its reference sent.  Only the
  receiver that took the reference reads it, then stores FREE.
* ORPHAN: FULL, but the sender has exited and dropped its pool; whoever reads
  it removes its name afterwards.
* DEAD: removed (the sender exited, or replaced it by a larger one).

The sender commits FULL only after the whole payload is written and sends the
reference only after that, so a sender killed mid-object leaves a FREE slab
whose content nobody will ever read: never half an object.  The generation
(in the reference too) makes a reference that does not match its slab's
current use an error rather than a wrong object.

Slabs are named ``<ring name>-L<sender pid>-<hex>``, like one-off side
segments (large.py): they must outlive a sender killed with objects still in
flight, and a killed sender's slabs are swept by the queue's creator and by
``python -m ringipc cleanup`` (which knows the pattern).

Bounds: a pool holds at most POOL_SLABS slabs and POOL_BYTES bytes (but
always two, so one can be read while the next is written).  A sender that
finds every slab in use sleeps on its pool's *bell* (a page of shared memory
named like the slabs, with BELL_TAG before its hex, whose name every slab's
header carries at BELL_NAME;
the futex protocol is in core/_bulk.pyx) until a receiver hands a slab back:
the receiver rings the bell after its FREE store, which costs a fence and a
load, and a system call only when a sender is counted as asleep.  After
GIVE_UP seconds (or at once when it must not block) the sender falls back to
a one-off segment, so a receiver killed while holding a slab can never
wedge its senders.  Before sleeping it looks SPIN more times, yielding the
CPU between (a receiver working through a full pool frees a slab every few
tens of microseconds; a sleep would cost it a FUTEX_WAKE per object).
Sleeps are cut into WAIT_SLICE slices, and a signal ends
one (Ctrl-C raises KeyboardInterrupt in the waiting put).
"""
import mmap
import os
import re
import secrets
import struct
import threading
import time
import weakref
from typing import TYPE_CHECKING, Dict, List, Optional, Set

from multiprocessing import util

from . import _segment
from ._bulk import (bell_enter_wait, bell_leave_wait, bell_ring_if_waited, bell_sleep_until, cas_u64, load_u64,
                    store_u64)
from ..errors import CorruptSegment

if TYPE_CHECKING:  # typing_extensions is not a runtime dependency
    from typing_extensions import Buffer

FREE, FULL, ORPHAN, DEAD = 0, 1, 2, 3
HEADER = 4096          # payload offset: a page, so that frames start page-aligned (mp/oob.py's _placed)
POOL_SLABS = 8
POOL_BYTES = 64 << 20
GIVE_UP = 1.0          # seconds a blocking sender waits for a slab before a one-off segment
READER_CACHE = 32      # slabs a receiving process keeps mapped (several senders' pools)
SPIN = 20 if len(os.sched_getaffinity(0)) > 1 else 0  # looks (yielding between) before a sender sleeps
WAIT_SLICE = 0.05      # longest single sleep of a sender waiting for a slab (it looks again after each)
BELL_NAME = 64         # header offset of the pool's bell name (u16 length, then ASCII)
BELL_TAG = "bell"      # a bell is named <ring>-L<pid>-bell<hex> (ringipc/cleanup.py knows it)
_BELL_BYTES = 4096
_NAME_LENGTH = struct.Struct("<H")
_GRAIN = 64 << 10


def _word(gen: int, state: int) -> int:
    return (gen << 2) | state


class _Slab:
    __slots__ = ("name", "mapping", "capacity", "gen", "busy")

    def __init__(self, name: str, mapping: mmap.mmap, capacity: int) -> None:
        self.name, self.mapping, self.capacity = name, mapping, capacity
        self.gen, self.busy = 0, False

    def state(self) -> int:
        return load_u64(self.mapping, 0) & 3


class Pool:
    """The slabs one process sends through, for one ring (`owner`)."""

    def __init__(self, owner: str) -> None:
        self.owner, self.pid = owner, os.getpid()
        self.slabs: List[_Slab] = []
        self.lock = threading.Lock()
        self.holders: Set[int] = set()
        self.bell: Optional[mmap.mmap] = None
        self.bell_name = ""
        self.sleeps = 0   # sleeps on the bell (tests assert on these, not on timing)
        self.woken = 0    # ... of which ended by a ring rather than a time-out

    def adopt(self, holder: object) -> None:
        """Keep the pool while `holder` (a sending end in this process) lives."""
        key = id(holder)
        if key not in self.holders:
            self.holders.add(key)
            weakref.finalize(holder, self._let_go, key)

    def _let_go(self, key: int) -> None:
        self.holders.discard(key)
        if self.holders or _pools.get(self.owner) is not self or self.pid != os.getpid():
            return
        # Collection can strike in the middle of this pool's own code on this
        # thread: then the pool is left for the exit hook rather than deadlock.
        if self.lock.acquire(False):
            self.lock.release()
            release_pool(self.owner)

    def _bytes(self) -> int:
        return sum(s.capacity for s in self.slabs)

    def _free_slab(self, n: int) -> Optional[_Slab]:
        """A FREE slab of at least `n` bytes, marked busy; grows one if needed."""
        small: Optional[_Slab] = None
        for slab in self.slabs:
            if slab.busy or slab.state() != FREE:
                continue
            if slab.capacity >= n:
                slab.busy = True
                return slab
            small = slab
        room = len(self.slabs) < 2 or (len(self.slabs) < POOL_SLABS and self._bytes() + n <= POOL_BYTES)
        if not room and small is not None:
            self._drop(small)  # too small for today's objects: replaced by a larger one
            room = True
        if not room:
            return None
        if self.bell is None:
            self.bell_name = f"{self.owner}-L{self.pid}-{BELL_TAG}{secrets.token_hex(6)}"
            self.bell = _segment.create(self.bell_name, _BELL_BYTES)
            _segment.disown(self.bell_name)
        capacity = (n + n // 8 + _GRAIN - 1) // _GRAIN * _GRAIN
        name = f"{self.owner}-L{self.pid}-{secrets.token_hex(6)}"
        mapping = _segment.create(name, HEADER + capacity)
        _segment.disown(name)  # the pool decides when its names go (release_all)
        bell = self.bell_name.encode()
        _NAME_LENGTH.pack_into(mapping, BELL_NAME, len(bell))
        mapping[BELL_NAME + 2:BELL_NAME + 2 + len(bell)] = bell
        slab = _Slab(name, mapping, capacity)
        slab.busy = True
        self.slabs.append(slab)
        return slab

    def _drop(self, slab: _Slab) -> None:
        self.slabs.remove(slab)
        store_u64(slab.mapping, 0, _word(slab.gen, DEAD))
        _segment.unlink(slab.name)
        slab.mapping.close()

    def take(self, n: int, block: bool = True, timeout: Optional[float] = None) -> Optional[_Slab]:
        """A busy slab for `n` payload bytes, or None: use a one-off segment."""
        deadline: Optional[float] = None
        spun = 0
        while True:
            with self.lock:
                slab = self._free_slab(n)
            if slab is not None or not block:
                return slab
            now = time.monotonic()
            if deadline is None:
                deadline = now + (GIVE_UP if timeout is None else max(0.0, min(timeout, GIVE_UP)))
            if now >= deadline or self.bell is None:
                return None
            if SPIN and spun < SPIN:
                # A receiver working through a full pool hands a slab back every
                # few tens of microseconds: look again for a while before
                # sleeping, which would cost it a FUTEX_WAKE per object.
                spun += 1
                os.sched_yield()
                continue
            bell = self.bell  # kept: another thread may release the pool meanwhile
            try:
                # Counted as a sleeper first (inside the try: a signal handled
                # as the call returns must not leave the count raised), then
                # look again: a slab handed back from here on rings the bell.
                seen = bell_enter_wait(bell)
                with self.lock:
                    slab = self._free_slab(n)
                if slab is not None:
                    return slab
                self.sleeps += 1
                if bell_sleep_until(bell, seen, min(deadline - now, WAIT_SLICE)):  # Ctrl-C raises here
                    self.woken += 1
            finally:
                bell_leave_wait(bell)

    def ring(self) -> None:
        """A slab was freed in this process: wake its other threads waiting for one."""
        if self.bell is not None:
            bell_ring_if_waited(self.bell)

    def commit(self, slab: _Slab) -> int:
        """The payload is written: publish it; returns the generation to reference."""
        slab.gen += 1
        store_u64(slab.mapping, 0, _word(slab.gen, FULL))
        slab.busy = False
        return slab.gen

    def abandon(self, slab: _Slab) -> None:
        """The payload will not be sent (an error while writing it)."""
        slab.busy = False
        self.ring()

    def take_back(self, name: str, gen: int) -> None:
        """A committed slab whose reference was never sent: FREE again."""
        for slab in self.slabs:
            if slab.name == name:
                if cas_u64(slab.mapping, 0, _word(gen, FULL), _word(gen, FREE)):
                    self.ring()
                return

    def release_all(self) -> None:
        """The process is done sending: remove free slabs; those still in
        flight become ORPHANs, removed by their reader."""
        with self.lock:
            for slab in self.slabs:
                while True:
                    word = load_u64(slab.mapping, 0)
                    state, gen = word & 3, word >> 2
                    if state == FREE and cas_u64(slab.mapping, 0, word, _word(gen, DEAD)):
                        _segment.unlink(slab.name)
                        break
                    if state == FULL and cas_u64(slab.mapping, 0, word, _word(gen, ORPHAN)):
                        break
                    if state in (ORPHAN, DEAD):
                        break
                try:
                    slab.mapping.close()
                except BufferError:
                    pass  # a view of it is still in use here; unmapped when collected
            self.slabs = []
            if self.bell is not None:
                # Receivers that mapped it keep their mapping; no sender sleeps on it any more.
                _segment.unlink(self.bell_name)
                _close_quietly(self.bell)
                self.bell = None


_pools: Dict[str, Pool] = {}
# This process's id, kept up to date by _after_fork: os.getpid() is a system
# call, and pool() runs on every large put.
_pid = os.getpid()
_pools_lock = threading.Lock()


def take_back(name: str, gen: int) -> None:
    """Free this process's committed slab `name` whose reference was never sent."""
    for p in list(_pools.values()):
        if p.pid == os.getpid():
            p.take_back(name, gen)


def pool(owner: str, holder: object) -> Pool:
    """This process's pool for ring `owner` (a forked child gets its own),
    kept while `holder` (or another sending end adopted by it) lives."""
    p = _pools.get(owner)
    if p is None or p.pid != _pid:
        with _pools_lock:
            p = _pools.get(owner)
            if p is None or p.pid != _pid:
                p = _pools[owner] = Pool(owner)
                _hook_exit()
    if id(holder) not in p.holders:
        with _pools_lock:
            p.adopt(holder)
    return p


def let_go(owner: str, holder: object) -> None:
    """`holder` closed: it sends no more through ring `owner`."""
    p = _pools.get(owner)
    if p is not None and id(holder) in p.holders:
        p._let_go(id(holder))


def release_pool(owner: str) -> None:
    p = _pools.pop(owner, None)
    if p is not None and p.pid == os.getpid():
        p.release_all()


def _after_fork() -> None:
    # The parent's slabs are the parent's: a child writing into them would
    # race the parent.  Its mappings stay (they unmap when collected).
    global _pools_lock, _pid
    _pid = os.getpid()
    _pools.clear()
    _pools_lock = threading.Lock()
    _reader.lock = threading.Lock()  # a thread of the parent may have held it


os.register_at_fork(after_in_child=_after_fork)


class Reader:
    """The receiving side: slabs mapped once and kept (at most READER_CACHE)."""

    def __init__(self) -> None:
        self.maps: Dict[str, mmap.mmap] = {}
        self.lock = threading.Lock()
        self.bells: Dict[str, Optional[mmap.mmap]] = {}  # by bell name; None: gone (its sender with it)
        self.bell_of: Dict[str, str] = {}                # slab name -> its pool's bell name

    def _mapping(self, name: str) -> mmap.mmap:
        mapping = self.maps.get(name)
        if mapping is None:
            if len(self.maps) >= READER_CACHE:
                self._evict()
            mapping, size = _segment.open_existing(name)
            if mapping is None or size <= HEADER:
                if mapping is not None:
                    mapping.close()
                raise CorruptSegment(f"slab {name!r} is empty")
            self.maps[name] = mapping
        return mapping

    def _evict(self) -> None:
        # Removed slabs first; else the oldest mapped.
        dead = [n for n, m in self.maps.items() if load_u64(m, 0) & 3 == DEAD] or list(self.maps)[:1]
        for name in dead:
            _close_quietly(self.maps.pop(name))

    def open(self, name: str, gen: int, n: int) -> memoryview:
        """A view of the `n` payload bytes of FULL slab `name`, generation
        `gen` (while the view is held, the mapping is never closed)."""
        with self.lock:
            mapping = self._mapping(name)
            word = load_u64(mapping, 0)
            if word >> 2 != gen or word & 3 not in (FULL, ORPHAN) or HEADER + n > len(mapping):
                raise CorruptSegment(f"slab {name!r} does not hold the object its reference names "
                                     f"(state {word & 3}, generation {word >> 2}, expected {gen})")
            with memoryview(mapping) as whole:
                return whole[HEADER:HEADER + n]

    def done(self, name: str, gen: int, mapping: "Buffer") -> Optional[mmap.mmap]:
        """The object is read: hand the slab back to its sender (or remove an
        orphan).  `mapping` is the view's (the cache may have dropped it).
        Returns an orphan's mapping, dropped from the cache, for the caller
        to pass to ``close_later`` once its view is released."""
        with self.lock:
            if cas_u64(mapping, 0, _word(gen, FULL), _word(gen, FREE)):
                bell = self._bell(name, mapping)
                if bell is not None:
                    bell_ring_if_waited(bell)  # a fence and a load unless its sender sleeps
                return None
            if cas_u64(mapping, 0, _word(gen, ORPHAN), _word(gen, DEAD)):
                _segment.unlink(name)
                if self.maps.get(name) is mapping:
                    return self.maps.pop(name)
        return None

    def _bell(self, name: str, mapping: "Buffer") -> Optional[mmap.mmap]:
        """The bell of slab `name`'s pool, mapped once and kept (None if gone)."""
        bell_name = self.bell_of.get(name)
        if bell_name is None:
            with memoryview(mapping) as header:
                (length,) = _NAME_LENGTH.unpack_from(header, BELL_NAME)
                bell_name = bytes(header[BELL_NAME + 2:BELL_NAME + 2 + length]).decode("ascii", "replace")
            # Read from shared memory: only a name of this slab's own pool is
            # trusted, never another segment whose first word a ring would bump.
            prefix = _pool_prefix(name)
            if not (bell_name.startswith(prefix) and _BELL_SUFFIX.fullmatch(bell_name[len(prefix):])):
                bell_name = ""
            if len(self.bell_of) >= 4 * READER_CACHE:
                self.bell_of.clear()  # looked up again from the slab's header when next needed
            self.bell_of[name] = bell_name
        if not bell_name:
            return None
        if bell_name not in self.bells:
            if len(self.bells) >= READER_CACHE:
                oldest = self.bells.pop(next(iter(self.bells)))
                if oldest is not None:
                    _close_quietly(oldest)
            try:
                bell, size = _segment.open_existing(bell_name)
            except OSError:
                bell, size = None, 0  # its sender exited (and removed it): nobody sleeps on it
            if bell is not None and size < _BELL_BYTES:
                bell.close()
                bell = None
            self.bells[bell_name] = bell
        return self.bells[bell_name]


_BELL_SUFFIX = re.compile(f"{BELL_TAG}[0-9a-f]{{12}}")


def _pool_prefix(slab_name: str) -> str:
    """``<ring>-L<pid>-`` of a slab (its pool's bell shares it)."""
    return slab_name[:slab_name.rindex("-") + 1]


def _close_quietly(mapping: mmap.mmap) -> None:
    try:
        mapping.close()
    except BufferError:
        pass  # a zero-copy view still looks into it: unmapped when that is collected


def close_later(mapping: Optional[mmap.mmap]) -> None:
    """Unmap an orphan slab's mapping on a thread of its own.  The last
    mapping of a slab gives its pages back to the kernel: measured 90 ms for
    a 288 MiB slab, which the receive that read it (the last objects of an
    exited sender) would otherwise wait for.  mmap.close() releases the GIL
    while it unmaps.  Orphans come only from senders that exited: a thread
    each is rare."""
    if mapping is not None:
        threading.Thread(target=_close_quietly, args=(mapping,), name="ringipc-unmap", daemon=True).start()


_reader = Reader()


def reader() -> Reader:
    return _reader


def _release_at_exit() -> None:
    # Slabs still in flight become ORPHANs, which their readers (or the
    # creator's sweep of its own leftovers) remove.
    for owner in list(_pools):
        release_pool(owner)


_exit_hook_pid: Optional[int] = None


def _hook_exit() -> None:
    # multiprocessing's exit function runs in its children too, which skip
    # atexit (they leave by os._exit); a forked child starts with none of its
    # parent's finalizers, so each process registers its own, with its first
    # pool.  Last of all, after feeders have flushed their references.
    global _exit_hook_pid
    if _exit_hook_pid != os.getpid():
        _exit_hook_pid = os.getpid()
        util.Finalize(None, _release_at_exit, exitpriority=-20)
