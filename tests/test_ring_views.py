"""Zero-copy views: a message read or written in place in shared memory."""
import gc
import queue

import pytest

from ringipc import Ring, RingError


@pytest.fixture(params=["spsc", "mpmc"])
def ring(request):
    with Ring(capacity=1 << 14, kind=request.param) as r:
        yield r


def test_write_view_commits_on_exit(ring):
    with ring.send_view(5) as view:
        memoryview(view)[:] = b"hello"
    assert ring.recv_bytes() == b"hello"


def test_write_view_exception_publishes_nothing(ring):
    with pytest.raises(KeyError):
        with ring.send_view(100) as view:
            memoryview(view)[:4] = b"half"
            raise KeyError
    ring.send_bytes(b"after")
    assert ring.recv_bytes() == b"after"
    with pytest.raises(queue.Empty):
        ring.recv_bytes(block=False)


def test_read_view_is_the_message_in_place(ring):
    ring.send_bytes(bytes(range(200)))
    with ring.recv_view() as view:
        assert len(view) == 200
        mv = memoryview(view)
        assert mv.readonly and mv.tobytes() == bytes(range(200))
        with pytest.raises(BufferError):
            view.release()  # a memoryview still points into shared memory
        mv.release()
    assert not view.active
    with pytest.raises(ValueError):
        memoryview(view)
    assert ring.poll() is False


def test_handle_refuses_other_calls_while_a_view_is_open(ring):
    view = ring.send_view(10)
    with pytest.raises(RingError):
        ring.send_bytes(b"x")
    with pytest.raises(RingError):
        ring.recv_bytes(block=False)
    view.commit()
    view.commit()  # idempotent
    assert len(ring.recv_bytes()) == 10


def test_dropped_views_release_their_claims(ring):
    ring.send_bytes(b"one")
    view = ring.recv_view()
    del view
    gc.collect()
    assert ring.poll() is False  # the dropped read view consumed its message
    view = ring.send_view(50)
    del view
    gc.collect()
    ring.send_bytes(b"two")  # the dropped write view was aborted, not left claimed
    assert ring.recv_bytes() == b"two"


def test_view_waits_and_times_out_like_the_copying_calls(ring):
    with pytest.raises(queue.Empty):
        ring.recv_view(timeout=0.05)
    with pytest.raises(queue.Empty):
        ring.recv_view(block=False)
    with pytest.raises(ValueError):
        ring.send_view(ring.max_message_size + 1)
    with pytest.raises(ValueError):
        ring.send_view(-1)
