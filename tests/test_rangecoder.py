"""The compiled range coder of mixed blocks against constriction, whose words the format
names: the same split of every probability, the same words from the same bits, and the
same bits from the same words, valid or not."""

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


def constriction_encode(bits: np.ndarray, p: np.ndarray) -> bytes:
    enc = constriction.stream.queue.RangeEncoder()
    if len(bits):
        enc.encode(bits.astype(np.int32), FAMILY, probs_of(p))
    return enc.get_compressed().astype("<u4").tobytes()


def encode(bits: np.ndarray, p: np.ndarray, held: list[int] | None = None) -> bytes:
    """The words ``rangecoder`` writes, one bit at a time as the compiled loop codes them
    (appending to ``held`` how many words it held back for a carry before its end)."""
    enc = rangecoder.BitEncoder()
    enc.reserve(len(bits))
    for b, q in zip(bits, p, strict=True):
        rangecoder.encode_bit(int(b), int(q), enc.state, enc.out)
    if held is not None:
        held.append(int(enc.state[2]))
    return enc.payload()


def decode(payload: bytes, p: np.ndarray) -> list[int]:
    """Bits decoded by ``rangecoder``, up to and including a -1 (words no encoder wrote)."""
    dec = rangecoder.BitDecoder(payload)
    out = []
    for q in p:
        out.append(rangecoder.decode_bit(int(q), dec.state, dec.words))
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


def test_the_table_of_splits_is_split() -> None:
    """``splits``, which a device looks its splits up in, is ``split`` of every p."""
    table = rangecoder.splits()
    assert table.dtype == np.int64 and len(table) == 1 << 16
    assert all(int(table[p]) == int(rangecoder.split(p)) for p in range(1, 1 << 16))


def bits_and_probabilities(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = {
        "uniform": rng.integers(1, 1 << 16, n),
        "extreme": np.where(rng.random(n) < 0.5, rng.integers(1, 40, n), 65535),
        "confident": rng.integers(65000, 1 << 16, n),
        "even": rng.integers(32000, 33500, n),
    }[kind]
    # Mostly the likely bit, sometimes the other: every branch of the coder's carry.
    bits = (rng.integers(0, 1 << 16, n) < p).astype(np.int64)
    bits[rng.random(n) < 0.01] ^= 1
    return bits, p


KINDS = ["uniform", "extreme", "confident", "even"]


@pytest.mark.parametrize("kind", KINDS)
def test_decodes_what_constriction_encodes(kind: str) -> None:
    bits, p = bits_and_probabilities(kind, 50_000, len(kind))
    assert decode(constriction_encode(bits, p), p) == bits.tolist()


@pytest.mark.parametrize("kind", KINDS)
def test_encodes_the_words_constriction_encodes(kind: str) -> None:
    held: list[int] = []
    for seed in range(60):  # lengths 0 .. 2,950
        bits, p = bits_and_probabilities(kind, seed * 50, seed)
        assert encode(bits, p, held) == constriction_encode(bits, p), seed
    assert 0 in held and 1 in held  # ends with and without a word held back for a carry


def test_encoder_grows_its_buffer() -> None:
    bits, p = bits_and_probabilities("uniform", 20_000, 3)
    enc = rangecoder.BitEncoder()
    for start in range(0, len(bits), 1000):  # room made step by step, as code_byte does
        enc.reserve(1000)
        for b, q in zip(bits[start : start + 1000], p[start : start + 1000], strict=True):
            rangecoder.encode_bit(int(b), int(q), enc.state, enc.out)
    assert enc.payload() == constriction_encode(bits, p)


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
        rangecoder.BitDecoder(b"\x00" * 5)
