"""The brain MR route: a template + atlas, registered to the scan, gives each named structure a prior mask.

An :class:`AtlasPack` is a skull-stripped template T1 and a label map drawn on it, with names. The route
registers the template to the scan once (``medseg.text.register``), carries the whole label map and the
template brain over by nearest neighbour, and caches both on disk (``cache_dir()``: keyed by the scan's
content hash, the pack and the recipe; written atomically), so a second name on the same scan costs no
registration. ``prior(resolved)`` is then the union of the structure's label values on the scan grid.

Packs (from the ``atlases`` and ``colin27`` sample datasets, ``medseg fetch-data``):
``harvard_oxford`` (default: FSL MNI152 1 mm brain + Harvard-Oxford cortical and subcortical, max-prob 25 %),
``neuromorphometrics`` (same template, Neuromorphometrics) and ``colin27_aal`` (Colin27 skull-stripped + AAL).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseg.errors import MedsegError
from medseg.io.image import Image
from medseg.text import register as reg
from medseg.text.vocabulary import Resolved, Vocabulary

BRAIN_VALUE = 65535  # the template's whole brain, asked for as "brain"
CT_FLOOR = -300.0  # values below this (air in HU) mark a CT; the atlas route serves MR
PACKS = ("harvard_oxford", "neuromorphometrics", "colin27_aal")
DEFAULT_PACK = "harvard_oxford"


def cache_dir() -> Path:
    """Registration cache: ``$MEDSEG_TEXT_CACHE`` if set, else ``~/.cache/medseg/text``."""
    env = os.environ.get("MEDSEG_TEXT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "medseg" / "text"


@dataclass
class AtlasPack:
    """A template and a label map on its grid.

    Attributes:
        name: pack name (``"harvard_oxford"``).
        template: skull-stripped T1 (Image, zero outside the brain).
        labels: uint16 (z, y, x) label map on the template grid.
        names: label value -> atlas name.
        licence: one line, the atlas's terms.
    """

    name: str
    template: Image
    labels: np.ndarray
    names: dict[int, str]
    licence: str


def load_pack(name: str = DEFAULT_PACK) -> AtlasPack:
    """One of :data:`PACKS` from the fetched sample data.

    Raises:
        MedsegError: unknown pack (lists them) or its dataset is not fetched (names the command).
    """
    from medseg.data import sample
    from medseg.data.loaders import load_labelled
    from medseg.io import read_image

    if name not in PACKS:
        raise MedsegError(f"unknown atlas pack {name!r}; choose from {', '.join(PACKS)}")
    if name == "colin27_aal":
        case = load_labelled("colin27")[0]
        template = read_image(sample.path("colin27", "ch2bet.nii.gz"))
    else:
        case = load_labelled("atlases", [name])[0]
        template = case.image
    return AtlasPack(name, template, case.labels, dict(case.names), case.licence)


def image_hash(image: Image) -> str:
    """sha256 of a volume's voxels, dtype, shape and geometry (the registration cache key)."""
    digest = hashlib.sha256()
    array = np.ascontiguousarray(image.array)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    g = image.geometry
    digest.update(np.asarray([*g.spacing, *g.origin, *np.ravel(g.direction)], np.float64).round(6).tobytes())
    return digest.hexdigest()


@dataclass
class Warped:
    """A pack carried onto one scan.

    Attributes:
        labels: uint16 (z, y, x) the atlas on the scan grid.
        brain: bool (z, y, x) the template brain on the scan grid.
        metric: the registration's affine Mattes MI.
        seconds: registration time when it was made (0 when read from the cache now).
        cached: read from the cache.
    """

    labels: np.ndarray
    brain: np.ndarray
    metric: float
    seconds: float
    cached: bool


class AtlasRoute:
    """Named brain structures on a brain MR, by registering an atlas pack to it.

    Args:
        pack: an AtlasPack or the name of one (default :data:`DEFAULT_PACK`).
        spacing, demons_iterations: registration settings (``medseg.text.register.register``).
        use_cache: read and write the registration cache.
    """

    kind = "atlas"

    def __init__(self, pack: AtlasPack | str = DEFAULT_PACK, spacing: float = 2.0, demons_iterations: int = 40,
                 use_cache: bool = True) -> None:
        self.pack = load_pack(pack) if isinstance(pack, str) else pack
        self.spacing = spacing
        self.demons_iterations = demons_iterations
        self.use_cache = use_cache
        table = {**self.pack.names, BRAIN_VALUE: "Brain"}
        self.vocabulary = Vocabulary([table], scope=f"brain structures of the atlas route ({self.describe()})")
        self._warped: dict[str, Warped] = {}
        self._failed: dict[str, str] = {}  # registration key -> why it failed
        self._lock = threading.Lock()  # one registration at a time: a second caller waits for it, not redoes it

    def describe(self) -> str:
        return f"brain MR, {self.pack.name} atlas registered to the scan"

    def accepts(self, image: Image) -> str | None:
        """Why this route cannot serve ``image`` (one line), or None."""
        return refusal(image)

    # ----- registration -------------------------------------------------------------------------------
    def _key(self, image: Image) -> str:
        return f"{image_hash(image)[:32]}-{self.pack.name}-{reg.RECIPE}-{self.spacing:g}-{self.demons_iterations}"

    def warped(self, image: Image, what: str = "the scan") -> Warped:
        """The pack on ``image``'s grid: from memory, the disk cache, or a new registration.

        Raises:
            MedsegError: the route cannot serve the scan, or the registration failed (names the metric).
        """
        problem = self.accepts(image)
        if problem:
            raise MedsegError(f"{what}: {problem}")
        with self._lock:
            return self._warped_once(image, what)

    def _warped_once(self, image: Image, what: str) -> Warped:
        key = self._key(image)
        if key in self._warped:
            return self._warped[key]
        if key in self._failed:  # a registration that failed once fails again: not tried twice
            raise MedsegError(self._failed[key])
        path = cache_dir() / f"{key}.npz"
        found = _read_cache(path) if self.use_cache else None
        if found is None:
            try:
                found = self._register(image, what)
            except MedsegError as exc:
                self._failed[key] = str(exc)
                raise
            if self.use_cache:
                _write_cache(path, found)
        self._warped[key] = found
        return found

    def _register(self, image: Image, what: str) -> Warped:
        import SimpleITK as sitk

        scan = to_sitk(image)
        template = to_sitk(self.pack.template)
        result = reg.register(scan, template, self.spacing, self.demons_iterations)
        labels = sitk.GetImageFromArray(self.pack.labels.astype(np.uint16))
        labels.CopyInformation(template)
        brain = sitk.Cast(template > 0, sitk.sitkUInt8)

        def carry(thing) -> np.ndarray:
            return sitk.GetArrayFromImage(sitk.Resample(thing, scan, result.transform, sitk.sitkNearestNeighbor,
                                                        0, thing.GetPixelID()))

        brain_on_scan = carry(brain) > 0
        in_view = _in_view(scan, template, brain_on_scan, result.volume_ratio)
        reg.check(result, in_view, what)
        return Warped(carry(labels).astype(np.uint16), brain_on_scan, result.metric, result.seconds, False)

    def refine_for(self, resolved: Resolved) -> str:
        """The measured best refinement: the promptable model (box + mask prompt) for the whole brain (ITK T1:
        0.792 vs 0.696), the warped label moved by the scan's intensities for every other structure (36 deep grey:
        0.705 vs 0.694 for the label itself; benchmarks/results/text/fusions.md)."""
        values = {v for key, side in resolved.parts for v in self.vocabulary.entry(key, side).values}
        return "box+mask" if values == {BRAIN_VALUE} else "intensity"

    # ----- priors -------------------------------------------------------------------------------------
    def prior(self, image: Image, resolved: Resolved) -> np.ndarray:
        """bool (z, y, x): the union of the resolved structure's warped atlas labels on ``image``'s grid."""
        warped = self.warped(image)
        out = np.zeros(warped.labels.shape, bool)
        for key, side in resolved.parts:
            values = self.vocabulary.entry(key, side).values
            if BRAIN_VALUE in values:
                out |= warped.brain
            out |= np.isin(warped.labels, [v for v in values if v != BRAIN_VALUE])
        if not out.any():
            raise MedsegError(f"text prompt {resolved.text!r}: {resolved.name} lies outside this scan's field of view")
        return out


def refusal(image: Image) -> str | None:
    """Why no atlas route can serve ``image`` (one line), or None; no pack needed."""
    if not image.is_volume:
        return "the atlas route needs a 3D brain MR volume, not a 2D image"
    if image.modality == "CT":
        return "the atlas route serves brain MR; this scan is CT"
    low = float(np.min(image.array))
    if low < CT_FLOOR:
        return f"the atlas route serves brain MR; this scan looks like CT (values down to {low:.0f})"
    if min(image.array.shape) < 16:
        return f"the atlas route needs a whole brain; the volume is only {image.array.shape} voxels"
    return None


def _in_view(scan, template, brain_on_scan: np.ndarray, volume_ratio: float) -> float:
    """Part of the registered template brain inside the scan: its voxels on the scan grid (mm^3) over the
    template brain's volume scaled by the affine."""
    import SimpleITK as sitk

    template_ml = float((sitk.GetArrayViewFromImage(template) > 0).sum()) * float(np.prod(template.GetSpacing()))
    scan_ml = float(brain_on_scan.sum()) * float(np.prod(scan.GetSpacing()))
    return scan_ml / max(template_ml * volume_ratio, 1e-9)


def to_sitk(image: Image):
    """A 3D Image as a SimpleITK image (float32 voxels, same geometry)."""
    import SimpleITK as sitk

    out = sitk.GetImageFromArray(np.asarray(image.array, np.float32))
    out.SetSpacing([float(v) for v in image.geometry.spacing])
    out.SetOrigin([float(v) for v in image.geometry.origin])
    out.SetDirection([float(v) for v in image.geometry.direction])
    return out


def _read_cache(path: Path) -> Warped | None:
    """A cached Warped, or None if absent or unreadable (then it is made again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return Warped(data["labels"].astype(np.uint16), data["brain"].astype(bool), float(data["metric"]),
                          float(data["seconds"]), True)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def _write_cache(path: Path, warped: Warped) -> None:
    from medseg.files import write_bytes

    buffer = io.BytesIO()
    np.savez_compressed(buffer, labels=warped.labels, brain=warped.brain, metric=warped.metric,
                        seconds=warped.seconds)
    try:
        write_bytes(path, buffer.getvalue())
    except MedsegError:
        pass  # a cache that cannot be written costs time later, not the result now
