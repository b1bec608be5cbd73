"""nncompress on a real local Dask cluster (two worker processes, no network beyond this
machine): files and one file's frames, byte for byte what the command line makes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import sample_text

distributed = pytest.importorskip("distributed")

from nncompress.cluster import compress_file, compress_files, decompress_files  # noqa: E402


@pytest.fixture(scope="module")
def client(model_dir: Path):
    """Two worker processes that find the test models, as the CLI does in these tests."""
    env = {"NNCOMPRESS_MODELS": str(model_dir), "XDG_DATA_HOME": str(model_dir / "none")}
    cluster = distributed.LocalCluster(
        env=env,
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _cli(cli: str, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run([cli, *args], input=data, capture_output=True, check=True).stdout


def test_files_on_the_cluster(client, cli: str, model_env, tmp_path: Path) -> None:
    paths = []
    for i in range(4):
        p = tmp_path / f"f{i}.txt"
        p.write_bytes(sample_text(3000 + 500 * i, seed=i) if i != 2 else b"")
        paths.append(p)
    results = compress_files(client, paths)
    assert [r.raw_len for r in results] == [p.stat().st_size for p in paths]
    for p in paths:
        archive = Path(str(p) + ".nnc").read_bytes()
        assert archive == _cli(cli, "-c", str(p))
        assert _cli(cli, "-dc", str(p) + ".nnc") == p.read_bytes()
    originals = {p: p.read_bytes() for p in paths}
    for p in paths:
        p.unlink()
    decompress_files(client, [str(p) + ".nnc" for p in paths])
    assert {p: p.read_bytes() for p in paths} == originals


def test_one_files_frames_on_the_cluster(client, cli: str, model_env, tmp_path: Path) -> None:
    src = tmp_path / "big.txt"
    src.write_bytes(sample_text(20_000, seed=7))
    out = tmp_path / "big.txt.nnc"
    size = compress_file(client, src, out, block_size=2048, frame_size=4096)
    archive = out.read_bytes()
    assert size == len(archive)
    assert archive == _cli(cli, "-T1", "-B", "2K", "-F", "4K", "-c", str(src))
    assert _cli(cli, "-dc", str(out)) == src.read_bytes()
