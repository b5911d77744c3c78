"""Builder of the ``pyradiomics`` lesion dataset: five real CT and MR lesions with manual label maps.

PyRadiomics's source distribution (PyPI ``pyradiomics-3.1.0.tar.gz``, ``data/``) ships the test cases its feature
tests read: whole-field-of-view scans, each with one lesion labelled (value 1). pip cannot download that sdist
without building it, so the file is fetched from PyPI's file host at a pinned URL and sha256.

- ``brain1``: T1 MR 256 x 256 x 25, 0.78 x 0.78 x 6.5 mm, a brain tumour over 7 slices (about 70 x 47 px);
- ``brain2``: T1 MR 256 x 256 x 23, same spacing, a small brain lesion over 3 slices (about 20 x 15 px);
- ``breast1``: MR crop 45 x 120 x 21, 0.66 x 0.66 x 2.1 mm, a breast lesion over 3 slices (about 9 x 12 px);
- ``lung1``: CT 512 x 512 x 48, 0.57 x 0.57 x 5 mm, a lung nodule over 3 slices (about 24 x 26 px);
- ``lung2``: CT 512 x 512 x 61, 0.63 x 0.63 x 5 mm, a lung tumour over 11 slices (about 87 x 66 px).

The package is BSD-3-Clause; the images' origin and terms are not stated in it, so medseg uses them for evaluation
and tests only and never trains on them.
"""

from __future__ import annotations

from pathlib import Path

from medseg.data import sources
from medseg.data.builders_dicom import unpack_sdist
from medseg.data.sources import Progress

PYRADIOMICS_URL = ("https://files.pythonhosted.org/packages/03/c1/20fc2c50ab1e3304da36d866042a1905a2b05a1431ece35448ab6b"
                   "4578f2/pyradiomics-3.1.0.tar.gz")
PYRADIOMICS_SHA256 = "24722c962a6bbd09bc39c1c67dbffe92435f9692a421fabaae8a6b4511eb48e4"
LESION_CASES = ("brain1", "brain2", "breast1", "lung1", "lung2")
LESION_FILES = tuple(f"{case}_{kind}.nrrd" for case in LESION_CASES for kind in ("image", "label"))


def build_pyradiomics(dest: Path, work: Path, progress: Progress) -> str:
    """The five lesion cases (image and label NRRD) and the package's licence."""
    archive = sources.pypi_file(PYRADIOMICS_URL, PYRADIOMICS_SHA256, work, progress)
    members = {f"data/{name}": name for name in LESION_FILES}
    members["LICENSE.txt"] = "LICENSE.pyradiomics.txt"
    return unpack_sdist(archive, members, dest, (
        f"PyRadiomics test cases, from the PyPI source distribution {archive.name} (data/), sha256\n"
        f"{PYRADIOMICS_SHA256}. The package is BSD-3-Clause (LICENSE.pyradiomics.txt); the images' origin and\n"
        "terms are not stated there: medseg uses them for evaluation and tests only and never trains on them.\n"
        "<case>_image.nrrd = the scan, <case>_label.nrrd = its lesion (value 1) on the same grid.\n"
    ), progress)
