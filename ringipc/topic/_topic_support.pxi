# Included by _topic.pyx: how handles arrive in other processes (pickling),
# and the segment helpers of cleanup and the tests.

def _topic_from_ref(ref):
    return Topic._attached(open_ref(ref))


# multiprocessing's picklers (and ringipc's) may hand an anonymous topic's
# descriptor to another process; plain pickle may not (see Topic.__reduce__).
ForkingPickler.register(Topic, Topic._reduce_for_multiprocessing)


def _publisher_of(Topic topic):
    return topic.publisher()


def _subscriber_at(Topic t, pos, expected, seen_last, missed):
    cdef Subscriber s = Subscriber.__new__(Subscriber)
    s._setup(t)
    s._h.missed = missed
    s._join(0, pos, expected, seen_last, True, None)
    t._handles.add(s)
    return s


def segment_creator_pid(name):
    """The creator pid recorded in a topic segment's validated header (for cleanup)."""
    seg_name = _segment.normalize_name(name)
    mapping, size = _segment.open_existing(seg_name)
    if mapping is None:
        raise CorruptSegment(f"{seg_name!r} is empty")
    cdef Py_buffer view
    try:
        PyObject_GetBuffer(mapping, &view, PyBUF_SIMPLE)
        try:
            pid = c.tp_creator_pid(view.buf, <uint64_t>view.len)
        finally:
            PyBuffer_Release(&view)
    finally:
        mapping.close()
    if pid == 0:
        raise CorruptSegment(f"{seg_name!r} is not a ringipc topic")
    return pid


_DEBUG_NAMES = ("head", "tail", "last", "next_seq", "pub_owner", "free_until", "data_waiters",
                "space_waiters", "lock_waiters", "slot_hint", "slots_offset", "meta_offset", "data_offset",
                "data_bells", "space_bells")


def _debug_state(Topic topic):
    """The header's shared words and the section offsets, for tests."""
    cdef uint64_t out[c.TP_DEBUG_WORDS]
    topic._check_open()
    c.tp_debug_state(&topic._h, out)
    state = {name: out[i] for i, name in enumerate(_DEBUG_NAMES)}
    state["ncells"] = topic._h.ncells
    state["pub_owner_pid"] = state["pub_owner"] & 0xFFFFFFFF
    return state


def _bell_sender_fd():
    """Test hook: this extension's bell-sending socket, or -1 before the first ring."""
    return c.rip_bell_sender_fd()
