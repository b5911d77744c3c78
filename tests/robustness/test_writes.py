"""Writes that cannot fail halfway: medseg.files (atomic write, transaction) and the commands using it.

Full disk is a file-size limit in the child (RLIMIT_FSIZE: CPython ignores SIGXFSZ, so writes fail
with EFBIG, and ITK may not report them at all: the read-back check must). A read-only folder is a
read-only bind mount as root (chmod does not stop root), chmod 555 otherwise.
"""

from __future__ import annotations

import errno
import os
import re
import resource
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image as PILImage

from medseg.errors import MedsegError
from medseg.files import Transaction, append_line, write_bytes, write_file, write_text
from medseg.io.verify import verify_for
from robustness.conftest import assert_clean_failure, run_medseg, snapshot

FORMATS = (".nii.gz", ".nii", ".nrrd", ".mha", ".png", ".npz")
SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def limit_size(size: int):
    """preexec: files the child writes may grow to ``size`` bytes (a full disk)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A 3D scan (12x48x48, a bright cube in noise), a 2D picture, and two label masks."""
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    volume = rng.normal(100, 20, (12, 48, 48)).astype(np.int16)
    volume[3:9, 14:34, 14:34] += 400
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(folder / "scan.nii.gz"))
    picture = np.clip(volume[6] / 3, 0, 255).astype(np.uint8)
    PILImage.fromarray(picture).save(folder / "picture.png")
    truth = (volume > 300).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(truth), str(folder / "gt.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(truth[:, ::-1].copy()), str(folder / "pred.nii.gz"))
    return folder


def segment_args(inputs: Path, output: Path, *extra: str) -> list[str]:
    source = inputs / ("picture.png" if output.name.endswith(".png") else "scan.nii.gz")
    box = ["--box", "12,12,35,35"] + ([] if source.suffix == ".png" else ["--slice", "6"])
    return ["segment", source, "-o", output, *box, *extra]


@contextmanager
def read_only(folder: Path):
    """``folder`` read-only for this process and its children (bind mount as root, chmod otherwise)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", folder, folder], capture_output=True).returncode == 0
    if mounted and subprocess.run(["mount", "-o", "remount,bind,ro", folder], capture_output=True).returncode:
        subprocess.run(["umount", folder])
        mounted = False
    if not mounted:
        pytest.skip("running as root where a read-only bind mount is not allowed")
    try:
        yield
    finally:
        subprocess.run(["umount", folder], check=True)


# ---- the atomic write and the transaction, in this process ------------------------------------------


def test_write_file_writes_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    target = write_text(tmp_path / "new" / "a.json", "{}\n")
    assert target.read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json", "new"]


@pytest.mark.parametrize(("code", "words"), [(errno.ENOSPC, "No space left on device"),
                                             (errno.EFBIG, "File too large"), (errno.EROFS, "Read-only")])
def test_a_failing_writer_leaves_the_old_file(tmp_path: Path, code: int, words: str) -> None:
    (tmp_path / "a.csv").write_text("old")

    def writer(temp: Path) -> None:
        temp.write_text("half")
        raise OSError(code, os.strerror(code))

    with pytest.raises(MedsegError, match=words) as info:
        write_file(tmp_path / "a.csv", writer)
    assert "\n" not in str(info.value) and "a.csv" in str(info.value)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"a.csv": "old"}


def test_a_short_file_is_caught_by_the_check(tmp_path: Path) -> None:
    with pytest.raises(MedsegError, match="incomplete"):
        write_file(tmp_path / "a.bin", lambda t: t.write_bytes(b"x"), lambda t: "1 of 2 bytes")
    with pytest.raises(MedsegError, match="empty"):
        write_file(tmp_path / "b.bin", lambda t: None)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_or_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(MedsegError, match="is a folder"):
        write_text(tmp_path / "dir.json", "{}")
    with pytest.raises(MedsegError, match="Not a directory: a path under a regular file"):
        write_text(tmp_path / "file" / "a.json", "{}")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dir.json", "file"]


def test_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder):
        with pytest.raises(MedsegError, match="Read-only file system|Permission denied"):
            write_bytes(folder / "a.bin", b"abc")
        assert list(folder.iterdir()) == []


def test_transaction_all_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text("old")
    with pytest.raises(MedsegError, match="No space"):
        with Transaction() as tx:
            write_text(tmp_path / "old.json", "new", tx)
            write_file(tmp_path / "sub" / "b.csv", lambda t: (_ for _ in ()).throw(OSError(errno.ENOSPC, "x")), tx=tx)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"old.json": "old"}


def test_transaction_interrupted_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with Transaction() as tx:
            write_text(tmp_path / "a.json", "a", tx)
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_transaction_failed_rename_restores_replaced_files(tmp_path: Path, monkeypatch) -> None:
    for name in ("a.json", "b.csv"):
        (tmp_path / name).write_text(f"old {name}")
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith("b.csv"):
            raise OSError(errno.EIO, "Input/output error")
        real(src, dst)

    with Transaction() as tx:
        write_text(tmp_path / "a.json", "new", tx)
        write_text(tmp_path / "b.csv", "new", tx)
        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(MedsegError, match="b.csv: cannot write: Input/output error"):
            tx.commit()
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"a.json": "old a.json", "b.csv": "old b.csv"}


def test_append_line_closes_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text('{"case": 1}\n{"ca')
    append_line(path, '{"case": 2}')
    assert path.read_text().splitlines() == ['{"case": 1}', '{"ca', '{"case": 2}']


@pytest.mark.parametrize("end", FORMATS)
def test_verify_catches_truncated_files(tmp_path: Path, end: str) -> None:
    from medseg.io import write_mask
    from medseg.io.image import Geometry

    rng = np.random.default_rng(1)
    mask = (rng.random((4, 64, 64) if end != ".png" else (64, 64)) > 0.5).astype(np.uint8)
    geometry = Geometry((1.0,) * mask.ndim, (0.0,) * mask.ndim, tuple(np.eye(mask.ndim).ravel()))
    path = write_mask(mask, geometry, tmp_path / f"m{end}")
    assert verify_for(path)(path) is None
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    assert verify_for(path)(path)


def test_itk_short_writes_are_caught(tmp_path: Path) -> None:
    """In a child limited to 1000-byte files, every format fails cleanly, leaving nothing."""
    code = ("import numpy as np, resource, sys\nfrom medseg.io import write_mask\n"
            "from medseg.io.image import Geometry\nfrom medseg.errors import MedsegError\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
            "m = (np.random.default_rng(0).random((20, 64, 64)) > 0.5).astype(np.uint8)\n"
            "g = Geometry((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))\n"
            "g2 = Geometry((1.0, 1.0), (0.0, 0.0), (1, 0, 0, 1))\n"
            f"for end in {FORMATS!r}:\n"
            "    try:\n"
            "        write_mask(m[0] if end == '.png' else m, g2 if end == '.png' else g, sys.argv[1] + '/m' + end)\n"
            "        print(end, 'written')\n"
            "    except MedsegError as e:\n"
            "        print(end, 'error', e)\n")
    done = subprocess.run([sys.executable, "-c", code, tmp_path], capture_output=True, text=True,
                          env={**os.environ, **ENV})
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert len(lines) == len(FORMATS) and all(" error " in line for line in lines), done.stdout
    assert list(tmp_path.iterdir()) == []


# ---- the commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize("end", FORMATS)
def test_segment_on_a_full_disk(tmp_path: Path, inputs: Path, unchanged, end: str) -> None:
    with unchanged(tmp_path, inputs):
        run = run_medseg(segment_args(inputs, tmp_path / f"mask{end}"), env=ENV, preexec=limit_size(64))
    assert_clean_failure(run, f"mask{end}", "cannot write")
    assert "mask:" not in run.out


def test_segment_overlay_fails_after_the_mask_no_mask_is_left(tmp_path: Path, inputs: Path, unchanged) -> None:
    """The mask (~0.5 kB) fits in 4 kB, the overlay (noise, ~7 kB) does not: neither appears."""
    with unchanged(tmp_path, inputs):
        run = run_medseg(segment_args(inputs, tmp_path / "mask.nii.gz", "--overlay", tmp_path / "overlay.png"),
                         env=ENV, preexec=limit_size(4096))
    assert_clean_failure(run, "overlay.png", "File too large")


def test_segment_into_a_read_only_folder(tmp_path: Path, inputs: Path, unchanged) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    with read_only(out), unchanged(tmp_path, inputs):
        run = run_medseg(segment_args(inputs, out / "mask.nii.gz"), env=ENV)
    assert_clean_failure(run, "mask.nii.gz")
    assert "read-only" in run.err.lower() or "permission denied" in run.err.lower()


def evaluate_args(inputs: Path, *extra) -> list:
    return ["evaluate", "--pred", inputs / "pred.nii.gz", "--gt", inputs / "gt.nii.gz", *extra]


@pytest.mark.parametrize(("outputs", "limit"), [(("--json", "s.json", "--csv", "s.csv"), 64), (("--csv", "s.csv"), 32)])
def test_evaluate_on_a_full_disk(tmp_path: Path, inputs: Path, unchanged, outputs: tuple, limit: int) -> None:
    args = [tmp_path / a if a.startswith("s.") else a for a in outputs]
    with unchanged(tmp_path, inputs):
        run = run_medseg(evaluate_args(inputs, *args), env=ENV, preexec=limit_size(limit))
    assert_clean_failure(run, "File too large")


def test_evaluate_into_a_read_only_folder(tmp_path: Path, inputs: Path, unchanged) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    with read_only(out), unchanged(tmp_path, inputs):
        run = run_medseg(evaluate_args(inputs, "--json", out / "s.json"), env=ENV)
    assert_clean_failure(run, "s.json")


def _start_3d_job(tmp_path: Path) -> subprocess.Popen:
    from medseg.data.sample import data_root

    scan = data_root() / "colin27/ch2.nii.gz"
    if not scan.is_file():
        pytest.skip("sample data colin27 not fetched")
    args = ["segment", scan, "-o", tmp_path / "mask.nii.gz", "--box", "40,40,10,140,180,150", "--engine", "eager"]
    # decoded as UTF-8 whatever the locale is by then (a library may have set LC_CTYPE to "C"): the slice bar draws
    # block characters once it has moved
    return subprocess.Popen([sys.executable, "-m", "medseg.cli.main", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, encoding="utf-8", errors="replace", env={**os.environ, **ENV},
                            preexec_fn=_as_in_a_terminal)


def _as_in_a_terminal() -> None:
    """preexec: SIGINT as a terminal gives it. A job started in the background by a shell without job control
    (as CI may run the suite) inherits SIGINT ignored, and medseg, like any Unix tool, keeps it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(("sig", "code", "word"),
                         [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_segment_stopped_by_a_signal_leaves_nothing(tmp_path: Path, sig: int, code: int, word: str) -> None:
    before = snapshot(tmp_path)
    proc = _start_3d_job(tmp_path)
    time.sleep(3)  # past the imports: the job is reading the scan or encoding slices
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    # a fast machine is already in the slice bar when the signal comes: its last redraw stays above the message
    lines = [line for line in err.splitlines() if line.strip() and not re.search(r"\d+%\|.*slice", line)]
    assert proc.returncode == code, err
    assert lines == [f"medseg: {word}"] and "Traceback" not in out
    assert snapshot(tmp_path) == before
