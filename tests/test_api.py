"""The Python API: ``nncompress.compress``/``decompress``, ``Compressor``/``Decompressor``,
``open``/``NNCFile`` and the ``NNCError`` family, as a user of ``lzma`` would use them."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import memory_model, sample_text
from hypothesis import given, settings
from hypothesis import strategies as st

import nncompress
from nncompress.model import IntModel

BLOCK, FRAME = 1024, 2048  # several frames from a few KB


def small(**kw):
    return {"block_size": BLOCK, "frame_size": FRAME, **kw}


def test_errors_form_one_family() -> None:
    assert issubclass(nncompress.FormatError, nncompress.NNCError)
    assert issubclass(nncompress.ModelError, nncompress.NNCError)
    from nncompress.workers import WorkerError

    assert issubclass(WorkerError, nncompress.NNCError)
    with pytest.raises(nncompress.NNCError, match="bad magic"):
        nncompress.decompress(b"not an archive")
    with pytest.raises(nncompress.FormatError, match="truncated"):
        nncompress.decompress(nncompress.compress(b"hello", model=memory_model())[:-1])


def test_import_is_light() -> None:
    """``import nncompress`` loads neither numpy nor torch; the API loads on first use."""
    code = (
        "import sys, nncompress; assert 'numpy' not in sys.modules, 'numpy';"
        "assert 'torch' not in sys.modules; nncompress.compress;"
        "assert 'torch' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_compress_and_decompress(tiny_model: IntModel) -> None:
    data = sample_text(5000, seed=1)
    blob = nncompress.compress(data, model=tiny_model)
    assert nncompress.decompress(blob, model=tiny_model) == data
    # Concatenated streams, as lzma.decompress reads them.
    other = nncompress.compress(b"tail", model=tiny_model, level="fast")
    assert nncompress.decompress(blob + other, model=tiny_model) == data + b"tail"
    assert nncompress.decompress(nncompress.compress(b"", model=tiny_model)) == b""
    with pytest.raises(ValueError, match="unknown level"):
        nncompress.compress(data, "best")


def test_decompress_finds_the_model_by_itself(model_env, tiny_model: IntModel) -> None:
    data = sample_text(3000, seed=2)
    blob = nncompress.compress(data, model="default")  # the test folder's default.nnm
    assert nncompress.decompress(blob) == data
    with pytest.raises(nncompress.ModelError, match="needs the model"):
        nncompress.decompress(blob, model="two")


@settings(max_examples=15, deadline=None)
@given(
    data=st.binary(max_size=6000) | st.just(sample_text(7000, seed=3)),
    cuts=st.lists(st.integers(0, 7000), max_size=6),
)
def test_compressor_gives_compress_bytes_whatever_the_chunks(data: bytes, cuts: list[int]) -> None:
    model = memory_model()
    whole = nncompress.compress(data, model=model, **small())
    c = nncompress.Compressor(model=model, **small())
    edges = [0, *sorted(x for x in cuts if x < len(data)), len(data)]
    parts = [c.compress(data[a:b]) for a, b in zip(edges, edges[1:], strict=False)]
    assert b"".join(parts) + c.flush() == whole
    with pytest.raises(ValueError):
        c.compress(b"more")
    # And the incremental decoder, fed in pieces, gives the data back.
    d = nncompress.Decompressor(model=model)
    step = max(1, len(whole) // 7)
    out = b"".join(d.decompress(whole[i : i + step]) for i in range(0, len(whole), step))
    assert out == data and d.eof and d.unused_data == b""


def test_decompressor_like_lzma(tiny_model: IntModel) -> None:
    data = sample_text(9000, seed=4)
    blob = nncompress.compress(data, model=tiny_model, **small())
    d = nncompress.Decompressor(model=tiny_model)
    assert d.needs_input and not d.eof
    first = d.decompress(blob[: len(blob) // 2])
    assert data.startswith(first) and 0 < len(first) < len(data)  # whole frames so far
    assert d.needs_input and not d.eof
    rest = d.decompress(blob[len(blob) // 2 :] + b"NEXT", max_length=100)
    assert len(rest) == 100 and not d.needs_input
    rest += d.decompress(b"")
    assert first + rest == data and d.eof and d.unused_data == b"NEXT"
    with pytest.raises(EOFError):
        d.decompress(b"x")


def test_nncfile_write_read_seek(tmp_path: Path, tiny_model: IntModel) -> None:
    data = sample_text(12_000, seed=5)
    path = tmp_path / "a.nnc"
    with nncompress.NNCFile(path, "wb", model=tiny_model, frame_size=FRAME, block_size=BLOCK) as f:
        assert f.writable() and not f.readable()
        for i in range(0, len(data), 999):
            assert f.write(data[i : i + 999]) == len(data[i : i + 999])
        assert f.tell() == len(data)
    assert path.read_bytes() == nncompress.compress(data, model=tiny_model, **small())
    with nncompress.open(path, model=tiny_model) as f:
        assert f.readable() and f.seekable() and not f.writable()
        f.seek(7000)
        assert f.read(300) == data[7000:7300]
        assert f.tell() == 7300
        reader = f._reader.raw  # type: ignore[union-attr]
        assert reader.frame_count == 6 and reader.frames_decoded == 1
        f.seek(-10, io.SEEK_END)
        assert f.read() == data[-10:]
        f.seek(0)
        assert f.read() == data
    with pytest.raises(ValueError, match="closed"):
        f.read()
    with pytest.raises(FileExistsError):
        nncompress.open(path, "xb", model=tiny_model)
    # "ab" appends a second stream; both read back.
    with nncompress.open(path, "ab", model=tiny_model) as f:
        f.write(b"appended")
    with nncompress.open(path, model=tiny_model) as f:
        assert f.read() == data + b"appended"


def test_text_mode_and_file_objects(tmp_path: Path, tiny_model: IntModel) -> None:
    text = "line one\nlíne two, ünïcode\n" * 50
    path = tmp_path / "t.nnc"
    with nncompress.open(path, "wt", encoding="utf-8", model=tiny_model) as f:
        f.write(text)
    with nncompress.open(path, "rt", encoding="utf-8", model=tiny_model) as f:
        assert f.readline() == "line one\n"
        assert f.read() == text[len("line one\n") :]
    with pytest.raises(ValueError):
        nncompress.open(path, "rb", encoding="utf-8")
    with pytest.raises(ValueError):
        nncompress.open(path, "rtb")

    class OneWay(io.RawIOBase):
        """A pipe: readable, not seekable."""

        def __init__(self, data: bytes) -> None:
            self.src = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[override]
            return self.src.readinto(b)

    blob = path.read_bytes() * 2
    with nncompress.open(OneWay(blob), model=tiny_model) as f:
        assert not f.seekable()
        assert f.read() == 2 * text.encode("utf-8")
        with pytest.raises(io.UnsupportedOperation):
            f.seek(0)
    with (
        nncompress.open(OneWay(blob[:-3]), model=tiny_model) as f,
        pytest.raises(nncompress.FormatError, match="truncated"),
    ):
        f.read()
    out = io.BytesIO()
    with nncompress.open(out, "wb", model=tiny_model) as f:
        f.write(b"to a file object")
    assert not out.closed  # not ours to close
    assert nncompress.decompress(out.getvalue(), model=tiny_model) == b"to a file object"


def test_fsspec_reads_and_writes_nnc(model_env, tiny_model: IntModel) -> None:
    fsspec = pytest.importorskip("fsspec")
    nncompress.register_fsspec()
    data = b"a,b\n1,2\n3,4\n" * 300
    with fsspec.open("memory://table.csv.nnc", "wb", compression="infer") as f:
        f.write(data)
    with fsspec.open("memory://table.csv.nnc", "rb", compression="infer") as f:
        assert f.read() == data
    with fsspec.open("memory://table.csv.nnc", "rb") as f:
        assert nncompress.decompress(f.read()) == data


def test_nothing_half_written_on_an_exception(tmp_path: Path, tiny_model: IntModel) -> None:
    path = tmp_path / "a.nnc"
    with pytest.raises(RuntimeError), nncompress.open(path, "wb", model=tiny_model) as f:
        f.write(sample_text(3000))
        raise RuntimeError("the producer failed")
    assert list(tmp_path.iterdir()) == []
    with nncompress.open(path, "wb", model=tiny_model) as f:
        f.write(b"first")
    before = path.read_bytes()
    with pytest.raises(RuntimeError), nncompress.open(path, "ab", model=tiny_model) as f:
        f.write(sample_text(3000))
        raise RuntimeError("again")
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]
    # "x" refuses a file that exists, also one that appeared while writing.
    other = tmp_path / "b.nnc"
    f = nncompress.open(other, "xb", model=tiny_model)
    f.write(b"data")
    other.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        f.close()
    assert other.read_bytes() == b"someone else's" and sorted(tmp_path.iterdir()) == [path, other]


def test_a_failed_open_leaves_files_alone(tmp_path: Path, tiny_model: IntModel) -> None:
    """An open that fails (here: an unknown model) neither empties the file of that name
    nor creates one."""
    keep = tmp_path / "keep.nnc"
    keep.write_bytes(b"precious archive")
    for mode in ("wb", "ab"):
        with pytest.raises(nncompress.ModelError):
            nncompress.open(keep, mode, model="no-such-model")
    with pytest.raises(nncompress.ModelError):
        nncompress.open(tmp_path / "new.nnc", "xb", model="no-such-model")
    import gc

    gc.collect()  # (a half-built file object is finalised here, if at all)
    assert keep.read_bytes() == b"precious archive"
    assert sorted(tmp_path.iterdir()) == [keep]


def test_reading_starts_at_the_file_position(tiny_model: IntModel) -> None:
    """As ``lzma.LZMAFile``: the archive starts where the file object stands."""
    data = sample_text(5000, seed=8)
    blob = nncompress.compress(data, model=tiny_model, **small())
    f = io.BytesIO(b"HDR!" + blob)
    f.seek(4)
    with nncompress.open(f, model=tiny_model) as r:
        r.seek(3000)
        assert r.read(100) == data[3000:3100]


def test_writing_through_a_symbolic_link(tmp_path: Path, tiny_model: IntModel) -> None:
    real = tmp_path / "real.nnc"
    real.write_bytes(b"old")
    real.chmod(0o640)
    link = tmp_path / "link.nnc"
    link.symlink_to(real)
    with nncompress.open(link, "wb", model=tiny_model) as f:
        f.write(b"new contents")
    assert link.is_symlink() and (real.stat().st_mode & 0o777) == 0o640
    assert nncompress.decompress(real.read_bytes(), model=tiny_model) == b"new contents"


def test_a_compressor_is_spent_after_an_error(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame that failed to code is lost: the stream refuses to go on, rather than make
    an archive that would only fail when decoded."""
    from nncompress import engine

    def failing(*args, **kw):
        raise RuntimeError("out of memory, say")

    c = nncompress.Compressor(model=tiny_model, **small())
    with c:
        monkeypatch.setattr(engine, "encode_frame", failing)
        with pytest.raises(RuntimeError):
            c.compress(sample_text(3 * FRAME))
        monkeypatch.undo()
        with pytest.raises(ValueError, match="after an error"):
            c.compress(b"more")
