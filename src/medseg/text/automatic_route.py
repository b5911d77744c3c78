"""A trained automatic model as a text route: its class names are its vocabulary, its output the mask.

Any object with ``class_names`` (label -> name, or a sequence of names; the first may be ``"background"``) and
``segment(image) -> (z, y, x) integer label map`` fits (e.g. what ``medseg.predict.automatic.load_automatic``
returns for a SAM3D run). Label ``k`` is ``class_names[k]`` when ``class_names[0]`` is the background, else
``class_names[k - 1]``. The model runs once per scan (kept in memory for the scan's later names).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medseg.errors import MedsegError
from medseg.io.image import Image
from medseg.text.vocabulary import Resolved, Vocabulary

BACKGROUND = ("background", "bg", "none", "_background_")


def class_table(class_names: list[str]) -> dict[int, str]:
    """Label value -> class name (see the module docstring for the numbering)."""
    names = [str(n) for n in class_names]
    if names and names[0].strip().lower() in BACKGROUND:
        return {k: n for k, n in enumerate(names) if k > 0}
    return {k: n for k, n in enumerate(names, start=1)}


class AutomaticRoute:
    """Named classes of a trained automatic model.

    Args:
        model: an object with ``class_names`` and ``segment(image)``.
        name: the model's name for messages (e.g. its run folder).
        modality: "CT" or "MR" if the model only serves one; scans of another (by their metadata) are refused.
    """

    kind = "automatic"

    def __init__(self, model: Any, name: str = "automatic model", modality: str | None = None) -> None:
        self.model = model
        self.name = name
        self.modality = modality
        names = model.class_names
        self.table = ({int(k): str(v) for k, v in names.items()} if isinstance(names, dict)
                      else class_table(list(names)))
        self.vocabulary = Vocabulary([self.table], scope=f"the classes of {name}")
        self._last: tuple[int, np.ndarray] | None = None

    def describe(self) -> str:
        return f"trained automatic model {self.name} ({len(self.table)} classes)"

    def accepts(self, image: Image) -> str | None:
        if not image.is_volume:
            return f"{self.name} segments 3D volumes, not 2D images"
        if self.modality and image.modality and image.modality != self.modality:
            return f"{self.name} was trained on {self.modality}; this scan is {image.modality}"
        return None

    def prior(self, image: Image, resolved: Resolved) -> np.ndarray:
        """bool (z, y, x): the model's voxels of the resolved classes."""
        if self._last is None or self._last[0] != id(image.array):
            labels = np.asarray(self.model.segment(image))
            if labels.shape != image.array.shape:
                raise MedsegError(f"{self.name} returned a {labels.shape} label map for a {image.array.shape} scan")
            self._last = (id(image.array), labels)
        labels = self._last[1]
        values = [v for key, side in resolved.parts for v in self.vocabulary.entry(key, side).values]
        out = np.isin(labels, values)
        if not out.any():
            raise MedsegError(f"text prompt {resolved.text!r}: {self.name} found no {resolved.name} on this scan")
        return out
