"""The x86 branch transform of mixed blocks: exact inversion whatever the bytes, the
encoder's guess of what is code, and archives that use it."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from conftest import compress, decompress, sample_text, walk_blocks
from hypothesis import given, settings
from hypothesis import strategies as st

from nncompress import filters
from nncompress import format as fmt
from nncompress.model import IntModel


def machine_code(n: int, seed: int = 0) -> bytes:
    """Bytes shaped like x86-64 code: short instruction runs between calls and jumps
    (E8/E9 and a 32-bit offset relative to the next instruction) to a few dozen functions."""
    rng = np.random.default_rng(seed)
    functions = np.sort(rng.integers(0, n, 40))
    bodies = [
        bytes(rng.integers(0, 256, int(rng.integers(2, 12)), dtype=np.uint8)) for _ in range(30)
    ]
    prologue = b"\x55\x48\x89\xe5\x48\x83\xec\x10"
    out = bytearray()
    while len(out) < n:
        kind = rng.random()
        if kind < 0.1:
            out += prologue
        elif kind < 0.45:
            target = int(functions[int(rng.integers(len(functions)))])
            op = 0xE8 if rng.random() < 0.8 else 0xE9
            out += bytes([op]) + struct.pack("<i", target - (len(out) + 5))
        else:
            out += bodies[int(rng.integers(len(bodies)))]
    return bytes(out[:n])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_the_transform_inverts_any_bytes(data: bytes) -> None:
    assert filters.x86_decode(filters.x86_encode(data)) == data


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0x00, 0xE8, 0xE9, 0xFF, 0x12]), max_size=200))
def test_the_transform_inverts_overlapping_candidates(values: list[int]) -> None:
    """Dense E8/E9 and 0/FF bytes: candidates whose offsets overlap other candidates."""
    data = bytes(values)
    assert filters.x86_decode(filters.x86_encode(data)) == data


def test_the_transform_makes_offsets_addresses() -> None:
    # A call at 100 to 1000 and one at 600 to 1000: different offsets, one address (the
    # target less 5: offset plus the opcode's position).
    data = bytearray(2000)
    data[100:105] = b"\xe8" + struct.pack("<i", 1000 - 105)
    data[600:605] = b"\xe8" + struct.pack("<i", 1000 - 605)
    out = filters.x86_encode(bytes(data))
    assert out[101:105] == out[601:605] == struct.pack("<i", 995)
    assert filters.x86_encode(b"") == b"" and filters.x86_encode(b"\xe8\x00\x00\x00") == (
        b"\xe8\x00\x00\x00"
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_code_is_taken_for_code(seed: int) -> None:
    assert filters.looks_like_x86(machine_code(200_000, seed))


@pytest.mark.parametrize(
    "data",
    [
        sample_text(200_000, 1),
        np.random.default_rng(0).bytes(200_000),
        bytes(100_000),
        bytes([0xE8, 0, 0, 0, 0]) * 20_000,  # E8 with offsets, all to different places
        machine_code(800, 1),  # too short to tell
        np.linspace(0, 1, 50_000).astype("<f4").tobytes(),
    ],
)
def test_other_data_is_not(data: bytes) -> None:
    assert not filters.looks_like_x86(data)


def test_a_code_block_round_trips_through_the_archive(tiny_model: IntModel) -> None:
    data = machine_code(60_000, 3) + sample_text(20_000, 2)
    blob = compress(data, tiny_model, block_size=30_000)
    assert decompress(blob, tiny_model) == data
    blocks = [bh for _, bh, _ in walk_blocks(blob)]
    assert any(bh.method == fmt.METHOD_MIXED and bh.x86 for bh in blocks)
    assert not blocks[-1].x86  # the text block


def test_a_damaged_x86_option_is_caught(tiny_model: IntModel) -> None:
    """Clearing the option decodes the block without undoing the transform: the check
    catches it."""
    data = machine_code(40_000, 4)
    blob = bytearray(compress(data, tiny_model))
    at, bh, _ = next(x for x in walk_blocks(bytes(blob)) if x[1].x86)
    head = bh.pack(len(data))
    assert blob[at : at + len(head)] == head
    bits = fmt.OPTION_X86 | (fmt.OPTION_RECORD if bh.record else 0)
    bits |= fmt.OPTION_FLAT if bh.flat else 0
    options = head.index(bytes([bits]), 3)
    blob[at + options] ^= fmt.OPTION_X86 | fmt.OPTION_RECORD
    with pytest.raises(fmt.FormatError):
        decompress(bytes(blob), tiny_model)
    assert io.BytesIO(bytes(blob)).read(4) == fmt.MAGIC


def test_code_and_records_read_at_random(tiny_model: IntModel, model_env: dict[str, str]) -> None:
    """The reader's random access decodes x86 and record blocks of any frame."""
    from test_records import table

    from nncompress.reader import ArchiveReader

    data = machine_code(30_000, 5) + table(1250, 1)
    blob = compress(data, tiny_model, block_size=15_000, frame_size=30_000)
    kinds = {(bh.x86, bh.record) for _, bh, _ in walk_blocks(blob)}
    assert (True, 0) in kinds and (False, 24) in kinds
    reader = ArchiveReader(io.BytesIO(blob))
    assert reader.frame_count == 2
    reader.seek(31_000)
    assert reader.read(500) == data[31_000:31_500]
    reader.seek(20_000)
    assert reader.read(600) == data[20_000:20_600]
