"""The compiled range decoder of mixed blocks against constriction, whose encoder writes
them: the same split of every probability, and the same bits from the same words, valid
or not."""

from __future__ import annotations

import constriction
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nncompress import rangecoder

FAMILY = constriction.stream.model.Categorical(perfect=False)


def probs_of(p: np.ndarray) -> np.ndarray:
    """The two symbols' weights for P(1) = p / 65536, as the mixed encoder passes them."""
    return np.stack([65536 - p, p], axis=1).astype(np.float32)


def encode(bits: np.ndarray, p: np.ndarray) -> bytes:
    enc = constriction.stream.queue.RangeEncoder()
    enc.encode(bits.astype(np.int32), FAMILY, probs_of(p))
    return enc.get_compressed().astype("<u4").tobytes()


def decode(payload: bytes, p: np.ndarray) -> list[int]:
    """Bits decoded by ``rangecoder``, up to and including a -1 (words no encoder wrote)."""
    words, state = rangecoder.start(payload)
    out = []
    for q in p:
        out.append(rangecoder.decode_bit(int(q), state, words))
        if out[-1] < 0:
            break
    return out


def constriction_decode(payload: bytes, p: np.ndarray) -> list[int]:
    """The same, by constriction's decoder, one bit per call (-1 where it refuses)."""
    dec = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").copy())
    out = []
    for row in probs_of(p):
        try:
            out.append(int(dec.decode(FAMILY, row[None])[0]))
        except (AssertionError, ValueError):
            out.append(-1)
            break
    return out


def test_split_of_every_probability_is_constrictions() -> None:
    # One bit 1 coded alone starts at lower = (2^40 - 1) * s, so the first word constriction
    # writes is s * 256: its split for that probability, exactly.
    for p in range(1, 1 << 16):
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode(np.array([1], dtype=np.int32), FAMILY, probs_of(np.array([p])))
        assert int(enc.get_compressed()[0]) == int(rangecoder.split(p)) * 256, p


@pytest.mark.parametrize("kind", ["uniform", "extreme", "confident", "even"])
def test_decodes_what_constriction_encodes(kind: str) -> None:
    rng = np.random.default_rng(len(kind))
    n = 50_000
    p = {
        "uniform": rng.integers(1, 1 << 16, n),
        "extreme": np.where(rng.random(n) < 0.5, rng.integers(1, 40, n), 65535),
        "confident": rng.integers(65000, 1 << 16, n),
        "even": rng.integers(32000, 33500, n),
    }[kind]
    # Mostly the likely bit, sometimes the other: every branch of the coder's carry.
    bits = (rng.integers(0, 1 << 16, n) < p).astype(np.int64)
    bits[rng.random(n) < 0.01] ^= 1
    assert decode(encode(bits, p), p) == bits.tolist()


@settings(max_examples=60, deadline=None)
@given(words=st.binary(max_size=48), seed=st.integers(0, 2**32 - 1))
def test_any_words_decode_as_constriction_decodes_them(words: bytes, seed: int) -> None:
    payload = words[: len(words) // 4 * 4]
    p = np.random.default_rng(seed).integers(1, 1 << 16, 400)
    assert decode(payload, p) == constriction_decode(payload, p)


def test_words_no_encoder_wrote_are_refused() -> None:
    # A point in the last 2^-24 of the first interval is beyond every symbol.
    payload = b"\xff" * 8
    p = np.array([100, 200])
    assert decode(payload, p) == [-1]
    assert constriction_decode(payload, p) == [-1]


@pytest.mark.parametrize("n_words", [0, 1, 2, 3])
def test_short_payloads(n_words: int) -> None:
    payload = bytes(range(7, 7 + 4 * n_words))
    p = np.random.default_rng(n_words).integers(1, 1 << 16, 100)
    assert decode(payload, p) == constriction_decode(payload, p)


def test_partial_words_are_refused() -> None:
    with pytest.raises(ValueError, match="whole number of 32-bit words"):
        rangecoder.start(b"\x00" * 5)
