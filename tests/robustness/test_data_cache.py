"""Sample-data cache integrity: damaged, tampered or unwritable caches (``medseg fetch-data``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from medseg.data import sample
from medseg.errors import MedsegError

from .conftest import assert_clean_failure, run_medseg, without_root_override


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """A dataset 'fake' of two files under a temporary MEDSEG_DATA; its builder counts its calls."""
    monkeypatch.setenv("MEDSEG_DATA", str(tmp_path / "data"))
    state = {"calls": 0}

    def build(dest: Path, work: Path, progress: sample.Progress) -> str:
        state["calls"] += 1
        (dest / "a.bin").write_bytes(b"a" * 1000)
        (dest / "b.txt").write_text("b")
        return "fake source"

    monkeypatch.setitem(sample.DATASETS, "fake", sample.Dataset("fake", ("a.bin", "b.txt"), False, "fake", build))
    return state


def test_manifest_records_sizes_and_sha256(fake: dict[str, int]) -> None:
    folder = sample.fetch("fake")
    record = json.loads((folder / sample.MANIFEST).read_text())
    assert record["bytes"] == {"a.bin": 1000, "b.txt": 1}
    assert len(record["sha256"]["a.bin"]) == 64
    assert sample.damage("fake") is None


@pytest.mark.parametrize("harm", ["truncate", "same size, other bytes", "delete", "manifest garbage",
                                  "old manifest"])
def test_damaged_cache_is_fetched_again(fake: dict[str, int], harm: str) -> None:
    folder = sample.fetch("fake")
    target = folder / "a.bin"
    if harm == "truncate":
        target.write_bytes(b"a" * 10)
    elif harm == "same size, other bytes":
        target.write_bytes(b"x" * 1000)
    elif harm == "delete":
        target.unlink()
    elif harm == "manifest garbage":
        (folder / sample.MANIFEST).write_text("{not json")
    else:  # a manifest written before checksums were recorded
        record = json.loads((folder / sample.MANIFEST).read_text())
        del record["sha256"], record["bytes"]
        (folder / sample.MANIFEST).write_text(json.dumps(record))
    assert sample.damage("fake") is not None
    if harm != "same size, other bytes":  # the cheap check sees sizes only
        assert not sample.is_fetched("fake")
        with pytest.raises(MedsegError, match="fetch-data fake"):
            sample.path("fake", "a.bin")
    lines: list[str] = []
    sample.fetch("fake", progress=lines.append)
    assert fake["calls"] == 2 and sample.damage("fake") is None
    assert target.read_bytes() == b"a" * 1000
    assert any("cached copy damaged" in line for line in lines)


def test_intact_cache_is_not_fetched_again(fake: dict[str, int]) -> None:
    sample.fetch("fake")
    sample.fetch("fake")
    assert fake["calls"] == 1


def test_unwritable_data_root_is_one_line(tmp_path: Path) -> None:
    """A cache folder the user cannot write: exit 2, one line naming it and MEDSEG_DATA; nothing created."""
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    run = run_medseg(["fetch-data", "nuclei"], env={"MEDSEG_DATA": str(root), "HOME": str(tmp_path)},
                     preexec=without_root_override)
    assert_clean_failure(run, "nuclei", str(root), "MEDSEG_DATA")
    assert list(root.iterdir()) == []


def test_intact_read_only_cache_is_used(tmp_path: Path) -> None:
    """A complete cache on a read-only folder works: fetch-data reports it fetched, exit 0."""
    source = sample.data_root() / "nuclei"
    if sample.damage("nuclei") is not None:
        pytest.skip("needs `medseg fetch-data nuclei`")
    root = tmp_path / "ro"
    shutil.copytree(source, root / "nuclei")
    for path in [root, root / "nuclei", *(root / "nuclei").iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    run = run_medseg(["fetch-data", "nuclei"], env={"MEDSEG_DATA": str(root), "HOME": str(tmp_path)},
                     preexec=without_root_override)
    assert run.code == 0, run.err
    assert "already fetched" in run.out
