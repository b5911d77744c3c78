"""One builder per sample dataset: download its source package and write the dataset's files.

Every builder has the signature ``build(dest, work, progress) -> source`` where ``dest`` is the
(temporary) dataset folder to fill, ``work`` a scratch folder on the same file system, ``progress`` a
callback taking one line, and ``source`` a short provenance string stored in the dataset manifest.
SimpleITK, scipy and pydicom are imported inside the builders so importing this module is instant.
"""

from __future__ import annotations

import plistlib
import shutil
import tarfile
from pathlib import Path

import numpy as np

from medseg.data import sources
from medseg.data.sources import Progress
from medseg.errors import MedsegError
from medseg.files import write_file, write_text


def _copy(source: Path, target: Path) -> None:
    """Copy a file through the atomic, checked write (``medseg.files``)."""
    from medseg.io.verify import verify_for

    write_file(target, lambda temp: shutil.copyfile(source, temp), verify_for(target))


def _write_image(image, target: Path) -> None:
    """A SimpleITK image (compressed) through the atomic, checked write."""
    import SimpleITK as sitk

    from medseg.io.verify import verify_for
    from medseg.io.write import quiet_stderr

    def write(temp: Path) -> None:
        with quiet_stderr():
            sitk.WriteImage(image, str(temp), True)

    write_file(target, write, verify_for(target))

NILEARN = "nilearn==0.14.1"
STARDIST = "stardist==0.9.2"
PYDICOM_DATA = "pydicom-data==1.0.0"
# stardist ships platform wheels only; ask for one fixed wheel so every machine gets the same bytes.
STARDIST_WHEEL = [
    "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp",
    "--abi", "cp311",
]  # fmt: skip

COLIN27_FILES = ("ch2.nii.gz", "ch2bet.nii.gz", "aal.nii.gz", "aal.nii.txt")
MNI152_FILES = (
    "t1.nii.gz", "brain_mask.nii.gz", "gm_mask.nii.gz", "wm_mask.nii.gz", "gm_prob.nii.gz", "wm_prob.nii.gz",
)  # fmt: skip
NUCLEI_FILES = ("img2d.tif", "mask2d.tif")
DICOM_PYDICOM = ("CT_small.dcm", "MR_small.dcm", "rtdose.dcm")
DICOM_PYDICOM_DATA = ("emri_small.dcm", "693_UNCI.dcm", "liver.dcm")
DICOM_FILES = DICOM_PYDICOM + DICOM_PYDICOM_DATA
ITK_T1_FILES = ("KmeansTest_T1UCharRaw.nii.gz", "KmeansTest_T1RawSkullStrip.nii.gz")
HEAD_CT_FILES = ("head_ct.nii.gz",)


def _debian_files(package: str, names: tuple[str, ...], dest: Path, work: Path, progress: Progress) -> str:
    """Download + unpack a Debian package, move ``names`` into ``dest`` and its copyright to NOTICE.txt."""
    deb = sources.apt_download(package, work, progress)
    progress(f"extracting {deb.name}")
    tree = sources.deb_extract(deb, work / "tree")
    for name in names:
        shutil.move(sources.find_file(tree, name, f"Debian package {package}"), dest / name)
    copyright_file = tree / "usr" / "share" / "doc" / package / "copyright"
    if copyright_file.is_file():
        _copy(copyright_file, dest / "NOTICE.txt")
    return f"Debian package {deb.name}"


def check_same_grid(reference: Path, *others: Path) -> None:
    """Raise MedsegError unless all images share size, spacing, origin and direction (headers only)."""
    import SimpleITK as sitk

    def grid(path: Path) -> tuple:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        return reader.GetSize(), reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection()

    ref = grid(reference)
    for other in others:
        got = grid(other)
        same = got[0] == ref[0] and all(np.allclose(a, b, atol=1e-4) for a, b in zip(got[1:], ref[1:], strict=True))
        if not same:
            raise MedsegError(f"{other.name} is not on the grid of {reference.name}: {got} != {ref}")


def build_colin27(dest: Path, work: Path, progress: Progress) -> str:
    """Colin27 T1 (ch2), skull-stripped T1 (ch2bet) and the AAL atlas with its label names."""
    source = _debian_files("mricron-data", COLIN27_FILES, dest, work, progress)
    progress("checking that ch2, ch2bet and aal share one grid")
    check_same_grid(dest / "ch2.nii.gz", dest / "ch2bet.nii.gz", dest / "aal.nii.gz")
    return source


def _threshold_mask(prob: np.ndarray, closing_iterations: int) -> np.ndarray:
    """nilearn's recipe: ``data / max > 0.2``, then an optional binary closing (uint8 0/1 out)."""
    mask = (prob.astype(np.float32) / prob.max()) > 0.2
    if closing_iterations:
        from scipy.ndimage import binary_closing

        mask = binary_closing(mask, iterations=closing_iterations)
    return mask.astype(np.uint8)


def build_mni152(dest: Path, work: Path, progress: Progress) -> str:
    """MNI152 2009a T1 template, tissue probability maps and nilearn's brain / gm / wm masks.

    The wheel ships only the T1, gm and wm maps; the masks are derived exactly as nilearn's
    ``load_mni152_brain_mask`` / ``load_mni152_gm_mask`` / ``load_mni152_wm_mask`` do.
    """
    import SimpleITK as sitk

    wheel = sources.pip_download(NILEARN, work, progress)
    base = "nilearn/datasets/data/mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
    members = {base.format("t1"): "t1.nii.gz", base.format("gm"): "gm_prob.nii.gz",
               base.format("wm"): "wm_prob.nii.gz",
               "nilearn/datasets/description/icbm152_2009.rst": "NOTICE.txt"}  # fmt: skip
    sources.wheel_extract(wheel, members, dest)
    progress("deriving brain / grey-matter / white-matter masks")
    for prob_name, mask_name, closing in (
        ("t1.nii.gz", "brain_mask.nii.gz", 0),
        ("gm_prob.nii.gz", "gm_mask.nii.gz", 2),
        ("wm_prob.nii.gz", "wm_mask.nii.gz", 2),
    ):
        prob = sitk.ReadImage(str(dest / prob_name))
        mask = sitk.GetImageFromArray(_threshold_mask(sitk.GetArrayViewFromImage(prob), closing))
        mask.CopyInformation(prob)
        _write_image(mask, dest / mask_name)
    check_same_grid(dest / "t1.nii.gz", *(dest / name for name in MNI152_FILES[1:]))
    return f"PyPI wheel {wheel.name}"


def build_nuclei(dest: Path, work: Path, progress: Progress) -> str:
    """The stardist 2D fluorescence nuclei image and its instance mask (2018 Data Science Bowl)."""
    wheel = sources.pip_download(STARDIST, work, progress, extra=STARDIST_WHEEL)
    members = {f"stardist/data/images/{name}": name for name in NUCLEI_FILES}
    members[sources.wheel_member_matching(wheel, "LICENSE.txt")] = "LICENSE.stardist.txt"
    sources.wheel_extract(wheel, members, dest)
    write_text(dest / "NOTICE.txt",
        "img2d.tif and mask2d.tif come from the stardist 0.9.2 wheel (stardist/data/images).\n"
        "Fluorescence microscopy image and instance mask from the 2018 Kaggle Data Science Bowl\n"
        "(BBBC038; Caicedo et al., Nature Methods 16, 2019). stardist licence: LICENSE.stardist.txt\n"
    )
    return f"PyPI wheel {wheel.name}"


def build_dicom(dest: Path, work: Path, progress: Progress) -> str:
    """DICOM objects: pydicom's own test files plus a few from the ``pydicom-data`` wheel.

    CT_small / MR_small (single frame), rtdose (15-frame RT dose), emri_small (10-frame enhanced MR),
    693_UNCI (512x512 CT), liver (3-frame DICOM-SEG).
    """
    import pydicom

    test_files = Path(pydicom.__file__).parent / "data" / "test_files"
    progress(f"copying pydicom {pydicom.__version__} test files")
    for name in DICOM_PYDICOM:
        if not (test_files / name).is_file():
            raise MedsegError(f"pydicom {pydicom.__version__} lacks data/test_files/{name}")
        _copy(test_files / name, dest / name)
    notice = (test_files / "README.txt").read_text(errors="replace") if (test_files / "README.txt").is_file() else ""
    wheel = sources.pip_download(PYDICOM_DATA, work, progress)
    members = {f"data_store/data/{name}": name for name in DICOM_PYDICOM_DATA}
    members[sources.wheel_member_matching(wheel, "LICENSE")] = "LICENSE.pydicom-data.txt"
    sources.wheel_extract(wheel, members, dest)
    write_text(dest / "NOTICE.txt",
        f"{', '.join(DICOM_PYDICOM)}: pydicom {pydicom.__version__} data/test_files.\n"
        f"{', '.join(DICOM_PYDICOM_DATA)}: PyPI wheel {wheel.name} (LICENSE.pydicom-data.txt).\n\n" + notice
    )
    return f"pydicom {pydicom.__version__} test files + PyPI wheel {wheel.name}"


def build_itk_t1(dest: Path, work: Path, progress: Progress) -> str:
    """ITK's example T1 MR (128x128x62, 2x2x3 mm) and its skull-strip label image (>0 = brain)."""
    return _debian_files("insighttoolkit5-examples", ITK_T1_FILES, dest, work, progress)


def read_inv3(path: Path) -> tuple[np.ndarray, tuple[float, float, float], str]:
    """Read the volume of an InVesalius project (``.inv3``, a tar.gz).

    Returns:
        (array, spacing, modality): array shaped (z, y, x) in the dtype named by ``main.plist``,
        spacing (x, y, z) in mm.
    """
    with tarfile.open(path, "r:gz") as tar:
        by_name = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        if "main.plist" not in by_name:
            raise MedsegError(f"{path.name} has no main.plist; not an InVesalius 3 project")
        meta = plistlib.loads(tar.extractfile(by_name["main.plist"]).read())
        matrix = meta["matrix"]
        shape = tuple(int(n) for n in matrix["shape"])
        dtype = np.dtype(matrix["dtype"]).newbyteorder("<")
        raw = tar.extractfile(by_name[matrix["filename"]]).read()
    if len(raw) != int(np.prod(shape)) * dtype.itemsize:
        raise MedsegError(f"{path.name}: matrix of {len(raw)} bytes does not match shape {shape} {dtype}")
    spacing = tuple(float(s) for s in meta["spacing"])
    return np.frombuffer(raw, dtype=dtype).reshape(shape), spacing, str(meta.get("modality", ""))


def build_head_ct(dest: Path, work: Path, progress: Progress) -> str:
    """InVesalius' example head CT, converted once to ``head_ct.nii.gz`` (int16 HU).

    Array (z, y, x) = 108x256x256, spacing (x, y, z) = 0.957x0.957x1.5 mm as stored in the project's
    main.plist. The project stores no orientation; the direction written, diag(1, -1, 1) in LPS, is read
    from the anatomy (slice 0 is inferior, row 0 is posterior: InVesalius flips rows on import) and
    left-right is assumed as in the source DICOM. The origin is (0, 0, 0).
    """
    import SimpleITK as sitk

    source = _debian_files("invesalius-examples", ("Cranium.inv3",), work, work, progress)
    shutil.move(work / "NOTICE.txt", dest / "NOTICE.txt")
    progress("converting Cranium.inv3 to head_ct.nii.gz")
    array, spacing, modality = read_inv3(work / "Cranium.inv3")
    if array.ndim != 3 or modality != "CT":
        raise MedsegError(f"Cranium.inv3 holds a {array.ndim}D {modality or 'unknown'} volume, expected 3D CT")
    image = sitk.GetImageFromArray(array.astype(np.int16))
    image.SetSpacing(spacing)
    image.SetDirection((1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0))
    _write_image(image, dest / "head_ct.nii.gz")
    return f"{source} (examples/Cranium.inv3)"
