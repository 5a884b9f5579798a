"""The benchmark's message verifier catches every way a transport can go wrong."""
import pytest

from ringipc.bench.payload import (
    MIN_SIZE, Payload, VerificationError, Verifier, combine, expected_digest,
)


@pytest.mark.parametrize("size", [MIN_SIZE, 64, 1000, 70000])
def test_clean_stream_verifies_and_digest_matches(size):
    p, v = Payload(size, slots=3), Verifier(size)
    for seq in range(50):
        assert v.check(p.message(seq)) is True
    assert v.check(p.stop()) is False
    assert v.stops == 1
    assert v.digest() == expected_digest(1, 50)


def test_loss_is_caught_at_once_with_one_consumer():
    p, v = Payload(64), Verifier(64)
    v.check(p.message_bytes(0))
    with pytest.raises(VerificationError, match="expected 1"):
        v.check(p.message_bytes(2))


def test_duplicate_is_caught():
    p, v = Payload(64), Verifier(64, strict=False)
    v.check(p.message_bytes(0))
    v.check(p.message_bytes(1))
    with pytest.raises(VerificationError, match="duplicated"):
        v.check(p.message_bytes(1))


@pytest.mark.parametrize("where", [0, 13, 40, 63])
def test_any_flipped_byte_is_caught(where):
    p, v = Payload(64), Verifier(64)
    msg = bytearray(p.message_bytes(0))
    msg[where] ^= 0x40
    with pytest.raises(VerificationError):
        v.check(msg)


def test_torn_message_is_caught():
    p, v = Payload(64), Verifier(64)
    head, tail = p.message_bytes(0), p.message_bytes(1)
    with pytest.raises(VerificationError, match="corrupt"):
        v.check(head[:32] + tail[32:])


def test_wrong_length_is_caught():
    p, v = Payload(64), Verifier(64)
    with pytest.raises(VerificationError, match="bytes"):
        v.check(p.message_bytes(0)[:-1])


def test_split_between_consumers_adds_up_and_a_swap_does_not():
    # Two producers, two consumers taking alternate messages.
    pa, pb = Payload(64, 0), Payload(64, 1)
    va, vb = Verifier(64, 2, strict=False), Verifier(64, 2, strict=False)
    for seq in range(20):
        (va if seq % 2 else vb).check(pa.message_bytes(seq))
        (vb if seq % 2 else va).check(pb.message_bytes(seq))
    assert combine([va.digest(), vb.digest()]) == expected_digest(2, 20)
    # Message 10 lost while 9 reached both consumers: the count adds up, the digest does not.
    va, vb = Verifier(64, 1, strict=False), Verifier(64, 1, strict=False)
    for seq in range(10):
        va.check(pa.message_bytes(seq))
    for seq in [9] + list(range(11, 20)):
        vb.check(pa.message_bytes(seq))
    got = combine([va.digest(), vb.digest()])
    assert got[0] == 20 and got != expected_digest(1, 20)

def test_too_small_size_is_refused():
    with pytest.raises(ValueError):
        Payload(MIN_SIZE - 1)
