"""ringipc.mp.oob: objects with large buffers encoded with pickle protocol 5,
out of band, and rebuilt from one message - every kind of buffer, content
checked by hash, and damaged frames refused with CorruptSegment."""
import hashlib
import pickle
import random

import pytest

from ringipc import CorruptSegment, Ring
from ringipc.mp import oob

np = pytest.importorskip("numpy", reason="NumPy is optional; the array cases need it (it is in the test extra)")

BIG = oob.OOB_MIN_BUFFER


def _digest(obj):
    if isinstance(obj, np.ndarray):
        return (obj.dtype.str, obj.shape, hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest())
    if isinstance(obj, (bytes, bytearray, memoryview, pickle.PickleBuffer)):
        return ("buffer", hashlib.sha256(bytes(memoryview(obj))).hexdigest())
    if isinstance(obj, dict):
        return {k: _digest(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_digest(v) for v in obj]
    return obj


def _through_ring(obj, copy=True):
    encoded = oob.encode(obj)
    with Ring(1 << 26) as ring:
        if isinstance(encoded, bytes):
            ring.send_bytes(encoded)
            return pickle.loads(ring.recv_bytes()), encoded
        with ring.send_view(encoded.size) as view:
            encoded.write_into(memoryview(view))
        with ring.recv_view() as view, memoryview(view) as message:
            assert oob.is_frame(message)
            out = oob.decode(message, copy=copy)
            digest = _digest(out)
            del out
        return digest, encoded


CASES = {
    "bytes": bytes(random.Random(1).randbytes(BIG * 3)),
    "bytearray": bytearray(random.Random(2).randbytes(BIG + 1)),
    "float64 C": np.arange(BIG, dtype=np.float64).reshape(-1, 64),
    "int8 Fortran": np.asfortranarray(np.arange(BIG * 2, dtype=np.int8).reshape(256, -1)),
    "complex": np.arange(BIG, dtype=np.complex128) * 1j,
    "structured": np.zeros(BIG, dtype=[("a", "<i4"), ("b", "<f8")]),
    "0-d": np.array(3.5),
    "empty": np.zeros((0, 10)),
    "non-contiguous": np.arange(BIG * 2, dtype=np.int32)[::3],
    "many buffers": [np.full(BIG, i, dtype=np.uint8) for i in range(40)],
    "mixed": {"small": list(range(10)), "name": "x" * 100, "frame": np.ones((512, 512), dtype=np.uint16),
              "raw": pickle.PickleBuffer(bytearray(BIG * 2)), "tail": b"t" * 10},
}


def _types(obj):
    if isinstance(obj, dict):
        return {k: _types(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_types(v) for v in obj]
    return type(obj)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("copy", [True, False], ids=["copy", "in-place"])
def test_round_trip(name, copy):
    """Content always; with copies, the types too (in place, buffers come back as views)."""
    obj = CASES[name]
    got, encoded = _through_ring(obj, copy)
    if isinstance(encoded, bytes):
        assert _digest(got) == _digest(obj) and _types(got) == _types(obj)
    else:
        assert got == _digest(obj)
    if copy and not isinstance(encoded, bytes) and name != "mixed":
        assert _types(oob.decode(encoded.tobytes())) == _types(obj)


def test_small_objects_stay_plain_pickles():
    for obj in (1, "text", b"x" * 100, np.arange(10), [np.zeros(100)] * 3):
        assert isinstance(oob.encode(obj), bytes)
    frame = oob.encode(np.zeros(BIG // 8))
    assert isinstance(frame, oob.Frame) and len(frame.buffers) == 1 and frame.size >= BIG


def test_a_large_bytearray_goes_out_of_band_and_comes_back_a_bytearray():
    data = bytearray(random.Random(5).randbytes(BIG * 2))
    frame = oob.encode(data)
    # Its own memory, not a copy in the pickle (CPython pickles bytearray in-band itself).
    assert isinstance(frame, oob.Frame) and frame.flags == oob.RAW_BYTEARRAY and frame.buffers[0].obj is data
    got = oob.decode(frame.tobytes())
    assert type(got) is bytearray and got == data
    in_place = oob.decode(bytearray(frame.tobytes()), copy=False)
    assert type(in_place) is memoryview and in_place == data
    assert type(oob.decode_owned(memoryview(bytearray(frame.tobytes())))) is bytearray
    assert isinstance(oob.encode(bytearray(100)), bytes)  # small ones stay plain pickles


def test_copied_arrays_are_independent_and_writable():
    array = np.arange(BIG, dtype=np.int64)
    out = oob.decode(oob.encode(array).tobytes())
    assert out.flags.writeable and out.flags.c_contiguous
    out[0] = -1
    assert array[0] == 0


def _frame_bytes():
    return bytearray(oob.encode([np.arange(BIG, dtype=np.uint8), np.arange(BIG, dtype=np.uint16)]).tobytes())


@pytest.mark.parametrize("damage", [
    lambda b: b[:20],                                     # truncated header
    lambda b: b[:-64],                                    # truncated body
    lambda b: b + bytes(64),                              # trailing bytes
    lambda b: b[:8] + (70000).to_bytes(4, "little") + b[12:],      # too many buffers
    lambda b: b[:12] + (8).to_bytes(4, "little") + b[16:],         # unknown flag
    lambda b: b[:24] + (2**64 - 1).to_bytes(8, "little") + b[32:],  # a length that wraps
    lambda b: b[:16] + (2**40).to_bytes(8, "little") + b[24:],      # pickle longer than the message
])
def test_damaged_frames_are_refused(damage):
    with pytest.raises(CorruptSegment):
        oob.decode(bytes(damage(_frame_bytes())))


def test_a_damaged_pickle_section_is_refused():
    frame = _frame_bytes()
    head = oob._aligned(oob._FIXED.size + 2 * 8)
    frame[head:head + 4] = b"\xff\xff\xff\xff"
    with pytest.raises(CorruptSegment):
        oob.decode(bytes(frame))


def test_fuzzed_frames_never_crash():
    rng = random.Random(5)
    good = bytes(_frame_bytes())
    for _ in range(2000):
        damaged = bytearray(good[:rng.randrange(0, 512)])
        for _ in range(rng.randrange(1, 8)):
            if damaged:
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            oob.decode(bytes(damaged))
        except CorruptSegment:
            pass


ARRAYS = {
    "float64": np.linspace(0, 1, 1 << 14),
    "big-endian f4 2-D": np.arange(1 << 16, dtype=">f4").reshape(256, -1),
    "Fortran int16": np.asfortranarray(np.arange(1 << 16, dtype=np.int16).reshape(128, -1)),
    "bool": np.arange(1 << 17) % 3 == 0,
    "complex128": np.arange(1 << 13) * (1 + 2j),
    "bytes S4": np.array([b"abcd"] * (1 << 15), dtype="S4"),
    "unicode U3": np.array(["xyz"] * (1 << 14), dtype="U3"),
    "uint8 >2 dims": np.arange(1 << 17, dtype=np.uint8).reshape(8, 16, -1),
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
@pytest.mark.parametrize("copy", [True, False])
def test_plain_arrays_take_the_array_frame(name, copy):
    arr = ARRAYS[name]
    frame = oob.encode(arr)
    assert type(frame) is oob.Frame and frame.flags == oob.ARRAY
    got = oob.decode(bytearray(frame.tobytes()), copy=copy)
    assert type(got) is np.ndarray and got.dtype == arr.dtype and got.shape == arr.shape
    assert got.flags.c_contiguous == arr.flags.c_contiguous and got.flags.f_contiguous == arr.flags.f_contiguous
    assert got.tobytes() == arr.tobytes() and got.flags.writeable


@pytest.mark.parametrize("arr", [np.arange(1 << 14).astype("M8[ns]"), np.ones(1 << 13, dtype=[("a", "i4"), ("b", "f4")]),
                                 np.arange(1 << 15, dtype=np.float64)[::2], np.array([object()] * (1 << 14))],
                         ids=["datetime", "structured", "strided", "object"])
def test_other_arrays_take_numpys_own_reduce(arr):
    data = oob.encode(arr)
    assert type(data) is not oob.Frame or data.flags == 0
    got = oob.decode(data.tobytes()) if type(data) is oob.Frame else pickle.loads(data)
    assert got.dtype == arr.dtype and got.shape == arr.shape
    if arr.dtype.kind != "O":
        assert got.tobytes() == np.ascontiguousarray(arr).tobytes()


@pytest.mark.parametrize("head", [(b"junk",), ("<f8", (10 ** 9,), "C"), ("no-such-dtype", (8,), "C"), ("<f8", (8,), "Q")])
def test_a_damaged_array_header_is_refused(head):
    frame = oob.Frame(pickle.dumps(head), [memoryview(bytes(64))], oob.ARRAY)
    with pytest.raises(CorruptSegment):
        oob.decode(frame.tobytes())


def test_large_buffers_start_mid_page_and_small_ones_stay_packed():
    big, small, odd = bytearray(b"b" * (1 << 20)), b"s" * 100, bytearray(b"o" * (oob.OOB_MIN_BUFFER + 3))
    frame = oob.encode([pickle.PickleBuffer(big), small, pickle.PickleBuffer(odd), pickle.PickleBuffer(big)])
    assert isinstance(frame, oob.Frame) and len(frame.buffers) == 3
    assert [start % 4096 for start in frame.offsets[1:]] == [2048] * 3
    assert frame.offsets[1] - frame.offsets[0] < 4096 + len(frame.pickle)  # at most a page of padding
    got = oob.decode(frame.tobytes())
    assert [bytes(got[0]), got[1], bytes(got[2]), bytes(got[3])] == [big, small, odd, big]
