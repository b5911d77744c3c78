"""Build small nnU-Net raw datasets from medseg's sample data, under ``<data root>/benchmarks/``.

    .venv/bin/medseg fetch-data                      # once
    .venv/bin/python scripts/make_sample_datasets.py # prints the folders it wrote

* ``Colin27AAL``: the Colin27 T1 (1 mm) with four AAL structures relabelled 1..4
  (Hippocampus_L, Caudate_L, Putamen_L, Thalamus_L).
* ``MNI152Brain``: the MNI152 2009a T1 with its brain mask as label 1.
* ``Nuclei``: the 512x512 fluorescence image (2D) with every nucleus as label 1, and the 125 instance
  ids in ``instancesTr/`` so that box2d prompts one box per nucleus.

Existing datasets are rebuilt (they are small). Nothing is downloaded here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import tifffile

from medseg.data import sample
from medseg.io import read_image, write_mask
from medseg.io.image import Geometry

AAL_STRUCTURES = ("Hippocampus_L", "Caudate_L", "Putamen_L", "Thalamus_L")


def _write_image(array: np.ndarray, geometry: Geometry, path: Path) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True)


def _dataset_json(folder: Path, names: list[str], channel: str, count: int) -> None:
    meta = {"channel_names": {"0": channel}, "labels": {"background": 0, **{n: i for i, n in enumerate(names, 1)}},
            "numTraining": count, "file_ending": ".nii.gz",
            "description": "built by medseg scripts/make_sample_datasets.py from the medseg sample data"}
    (folder / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")


def colin27(root: Path) -> Path:
    folder = root / "Colin27AAL"
    image = read_image(sample.path("colin27", "ch2.nii.gz"))
    aal = read_image(sample.path("colin27", "aal.nii.gz")).array
    values = sample.aal_labels()
    labels = np.zeros(aal.shape, np.uint8)
    for i, name in enumerate(AAL_STRUCTURES, start=1):
        labels[aal == values[name]] = i
    _write_image(image.array, image.geometry, folder / "imagesTr" / "colin27_0000.nii.gz")
    write_mask(labels, image.geometry, folder / "labelsTr" / "colin27.nii.gz")
    _dataset_json(folder, list(AAL_STRUCTURES), "MRI", 1)
    return folder


def mni152(root: Path) -> Path:
    folder = root / "MNI152Brain"
    image = read_image(sample.path("mni152", "t1.nii.gz"))
    brain = read_image(sample.path("mni152", "brain_mask.nii.gz")).array > 0
    _write_image(image.array, image.geometry, folder / "imagesTr" / "mni152_0000.nii.gz")
    write_mask(brain.astype(np.uint8), image.geometry, folder / "labelsTr" / "mni152.nii.gz")
    _dataset_json(folder, ["brain"], "MRI", 1)
    return folder


def nuclei(root: Path) -> Path:
    folder = root / "Nuclei"
    image = tifffile.imread(sample.path("nuclei", "img2d.tif"))
    instances = tifffile.imread(sample.path("nuclei", "mask2d.tif"))
    geometry = Geometry.identity(2)
    _write_image(image, geometry, folder / "imagesTr" / "nuclei_0000.nii.gz")
    write_mask((instances > 0).astype(np.uint8), geometry, folder / "labelsTr" / "nuclei.nii.gz")
    _write_image(instances.astype(np.uint16), geometry, folder / "instancesTr" / "nuclei.nii.gz")
    _dataset_json(folder, ["nucleus"], "fluorescence", 1)
    return folder


def main() -> int:
    root = sample.data_root() / "benchmarks"
    for build in (colin27, mni152, nuclei):
        print(build(root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
