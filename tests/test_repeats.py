"""What the encoder finds repeated: a block's period (``repeats.period``, for repeat blocks)
and the strings two parts of an input share (``repeats.shared``, for the frame cut)."""

from __future__ import annotations

import numpy as np
from conftest import sample_text
from hypothesis import given, settings
from hypothesis import strategies as st

from nncompress import format as fmt
from nncompress import repeats


def _shortest_period(data: bytes) -> int:
    """``repeats.period`` the slow way: every period up to half the length."""
    n = len(data)
    return next((p for p in range(1, n // 2 + 1) if data[p:] == data[: n - p]), 0)


@settings(max_examples=300, deadline=None)
@given(
    period=st.lists(st.integers(0, 255), min_size=1, max_size=40, unique=True).map(bytes),
    n=st.integers(1, 2000),
    tail=st.binary(max_size=3),
    noise=st.binary(max_size=50),
)
def test_the_period_is_the_shortest(period: bytes, n: int, tail: bytes, noise: bytes) -> None:
    """The period ``repeats.period`` finds is the shortest there is (of at most half the
    data); it finds it where the period's bytes differ from each other (its start comes
    again only a period on), and finds none where there is none."""
    data = fmt.repeated(period, n) + tail
    found = repeats.period(data)
    assert found == _shortest_period(data)
    assert repeats.period(noise) in (0, _shortest_period(noise))
    if found:
        assert fmt.repeated(data[:found], len(data)) == data


def test_a_period_behind_a_long_run_of_its_first_byte() -> None:
    """A period that starts with a run of 100 bytes: its first bytes come again at every
    place of the run, but the first 256 bytes of the block only a period on."""
    period = b"a" * 100 + b"b"
    data = fmt.repeated(period, 5000)
    assert repeats.period(data) == 101 == _shortest_period(data)


def test_what_two_halves_share() -> None:
    """None of unrelated text or random bytes; nearly all where the second part repeats
    the first, wherever the copy starts and whatever comes between; a part of it where
    the second part repeats some of the first."""
    rng = np.random.default_rng(8)
    a, b = sample_text(1 << 18, 1), sample_text(1 << 18, 2)
    assert repeats.shared(a, b) < 0.05
    assert repeats.shared(rng.bytes(1 << 18), rng.bytes(1 << 18)) == 0.0
    assert repeats.shared(a, b"x" * 777 + a) > 0.95
    assert repeats.shared(a + b, rng.bytes(5000) + b + rng.bytes(3000)) > 0.95
    third = repeats.shared(a + b, a[: 1 << 16] + rng.bytes(1 << 17))
    assert 0.2 < third < 0.5  # a third of the second part's strings, its text
    assert repeats.shared(a, b"") == repeats.shared(b"", a) == 0.0


def test_runs_have_no_anchors() -> None:
    """A run of zeros has no anchor (its hash is 0): it shares nothing, and adds no key to
    look up (an anchor at every place of a disk image's empty megabytes would)."""
    zeros = bytes(1 << 20)
    assert len(repeats._anchored(zeros)) == 0
    assert repeats.shared(zeros, zeros) == 0.0


def test_how_many_parts_a_frame_takes() -> None:
    """Up to the last part that repeats one before it (whichever), else the first alone;
    a part that shares less than the bar, runs, and random bytes do not count."""
    rng = np.random.default_rng(9)
    a, b, c, d = (sample_text(1 << 16, seed) for seed in (3, 4, 5, 6))
    noise = rng.bytes(1 << 16)
    assert repeats.frame_parts([a], 0.125) == 1
    assert repeats.frame_parts([a, b, c, d], 0.125) == 1
    assert repeats.frame_parts([a, b, a, d], 0.125) == 3
    assert repeats.frame_parts([a, b, c, b], 0.125) == 4  # the copy's source in the second
    assert repeats.frame_parts([a, b[:20_000] + a[20_000:], c], 0.125) == 2
    assert repeats.frame_parts([a, a[:5000] + noise[5000:]], 0.125) == 1  # under the bar
    assert repeats.frame_parts([bytes(1 << 16)] * 3, 0.125) == 1
    assert repeats.frame_parts([noise, noise[::-1], noise], 0.125) == 3
    assert repeats.frame_parts([a, b"", b""], 0.125) == 1
