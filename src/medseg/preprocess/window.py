"""Intensity windowing to 0..255, as MedSAM / LiteMedSAM preprocess their inputs.

CT uses fixed level/width windows in Hounsfield units; MR and other modalities are clipped to the
0.5-99.5 percentiles of the non-background voxels (background = 0 stays 0), then scaled to 0..255.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medseg.errors import MedsegError

# name -> (level, width) in HU
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "ct-soft": (40.0, 400.0),
    "ct-lung": (-600.0, 1500.0),
    "ct-bone": (400.0, 1800.0),
    "ct-brain": (40.0, 80.0),
}
WINDOW_NAMES = ("auto", *CT_WINDOWS, "mr", "none")


@dataclass(frozen=True)
class WindowChoice:
    name: str
    reason: str
    low: float
    high: float


def check_finite(array: np.ndarray, what: str) -> None:
    """Reject NaN/inf-filled or constant images with a one-line error."""
    if array.size == 0:
        raise MedsegError(f"{what} is empty")
    if not np.isfinite(array).all():
        raise MedsegError(f"{what} contains NaN or infinite values")
    if array.min() == array.max():
        raise MedsegError(f"{what} is constant (every value is {array.flat[0]}); nothing to segment")


def choose_window(array: np.ndarray, modality: str | None, name: str = "auto", picture: bool = False) -> WindowChoice:
    """Pick the window for an image and say why.

    Args:
        array: Voxel values of the whole image or volume (any shape).
        modality: "CT", "MR", ... or None when the file does not say.
        name: One of WINDOW_NAMES.
        picture: True for a 2D picture (PNG/JPEG/TIFF-like), whose 8-bit values are used as they are.
    """
    if name not in WINDOW_NAMES:
        raise MedsegError(f"unknown window '{name}'; choose one of {', '.join(WINDOW_NAMES)}")
    if name == "auto":
        name, reason = _auto_name(array, modality, picture)
    else:
        reason = "as requested"
    if name in CT_WINDOWS:
        level, width = CT_WINDOWS[name]
        return WindowChoice(name, reason, level - width / 2, level + width / 2)
    if name == "mr":
        foreground = array[array > 0] if (array > 0).any() else array.ravel()
        low, high = np.percentile(foreground, [0.5, 99.5])
        return WindowChoice(name, reason, float(low), float(high))
    return WindowChoice(name, reason, float(array.min()), float(array.max()))


def _auto_name(array: np.ndarray, modality: str | None, picture: bool) -> tuple[str, str]:
    if modality == "CT":
        return "ct-soft", "modality is CT"
    if modality is None and array.min() <= -500 and array.max() >= 300:
        return "ct-soft", "intensities look like Hounsfield units"
    if picture and array.dtype == np.uint8:
        return "none", "8-bit picture, used as it is"
    return "mr", f"modality {modality or 'unknown'}, non-CT intensity range"


def apply_window(array: np.ndarray, choice: WindowChoice) -> np.ndarray:
    """Clip to [low, high] and scale to 0..255 (float32). 'mr' keeps background 0 at 0."""
    span = max(choice.high - choice.low, 1e-8)
    out = (array.astype(np.float32) - np.float32(choice.low)) * np.float32(255.0 / span)
    np.clip(out, 0.0, 255.0, out=out)
    if choice.name == "mr":
        out[array == 0] = 0.0
    return out


class WindowedVolume:
    """A (z, y, x) volume windowed to 0..255 as it is read: ``volume[key]`` windows only the voxels that
    ``key`` selects (float32), so a walk over a few slices of a large CT does not window all of it
    (0.15 s and 100 MiB for 512x512x100). Same values as ``apply_window`` on the whole volume.

    Args:
        array: raw voxel values (z, y, x).
        choice: the window, chosen for the whole volume (``choose_window``).
    """

    def __init__(self, array: np.ndarray, choice: WindowChoice) -> None:
        self.array, self.choice = array, choice

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, key) -> np.ndarray:
        return apply_window(np.asarray(self.array[key]), self.choice)
