"""Register a skull-stripped MNI-space template to a brain MR (SimpleITK), and tell when it failed.

Recipe (measured on Colin27 against its AAL labels, ``benchmarks/results/text/``):

1. Both images are smoothed and resampled to ``spacing`` mm (2 mm: a 1 mm brain has ~7 M voxels, its
   2 mm copy ~0.9 M, and the atlas labels are not finer than that).
2. Affine: moments-centred start, Mattes mutual information (32 bins, 20 % random samples), regular step
   gradient descent, three levels (shrink 4/2/1, smoothing 2/1/0 voxels), on one thread so that a scan
   registered twice gets the same transform. MI copes with the scan's skull and a contrast unlike the template's.
3. Deformable: the scan is masked to the affinely placed template brain (dilated 3 voxels), the template's
   histogram matched to it, then SimpleITK's fast symmetric forces demons (``demons_iterations``, field
   smoothed with sigma 1.5 voxels) gives a displacement field.

Failure check (``check``): the final affine MI must reach ``MI_FLOOR`` (a good brain MR scores about
-0.4 to -0.7, a CT head or a spine crop much nearer 0), the affine may not shrink or grow the brain beyond
``SCALE_RANGE`` and at least ``IN_VIEW`` of the placed template brain must fall inside the scan.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from medseg.errors import MedsegError

RECIPE = "affine-mi-2mm+demons-v1"
MI_FLOOR = -0.25  # Mattes MI (negative; lower = better) the affine must reach
SCALE_RANGE = (0.55, 1.8)  # brain volume change the affine may make (template -> scan)
IN_VIEW = 0.8  # part of the placed template brain that must lie inside the scan


@dataclass
class Registration:
    """A template-to-scan registration.

    Attributes:
        transform: SimpleITK transform mapping scan (fixed) points to template (moving) points, as
            ``sitk.Resample(template_thing, scan, transform)`` wants.
        metric: final Mattes MI of the affine stage (negative; lower = better).
        volume_ratio: determinant of the affine's matrix (scan brain volume / template brain volume).
        seconds: wall time of the registration.
    """

    transform: object
    metric: float
    volume_ratio: float
    seconds: float


def _resampled(image, spacing: float):
    """``image`` (SimpleITK) as float32 on a ``spacing`` mm grid over the same extent (Gaussian smoothed)."""
    import SimpleITK as sitk

    image = sitk.Cast(image, sitk.sitkFloat32)
    old = image.GetSpacing()
    size = [max(int(round(s * n / spacing)), 4) for s, n in zip(old, image.GetSize(), strict=True)]
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing([spacing] * 3)
    reference.SetDirection(image.GetDirection())
    # keep the volume's centre where it was
    centre = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
    direction = np.array(image.GetDirection()).reshape(3, 3)
    origin = np.array(centre) - direction @ (np.array([(n - 1) / 2 for n in size]) * spacing)
    reference.SetOrigin(tuple(float(v) for v in origin))
    if spacing > min(old):
        image = sitk.SmoothingRecursiveGaussian(image, [max(spacing / 2 - s / 2, 0.01) for s in old])
    return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def _affine(fixed, moving):
    import SimpleITK as sitk

    start = sitk.CenteredTransformInitializer(fixed, moving, sitk.AffineTransform(3),
                                              sitk.CenteredTransformInitializerFilter.MOMENTS)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.2, 1)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(2.0, 1e-3, 100, relaxationFactor=0.6,
                                                 gradientMagnitudeTolerance=1e-6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2, 1, 0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    reg.SetInitialTransform(start, inPlace=True)
    # On several threads the metric's sums come in a varying order: the affine differed between runs in its ninth
    # digit, the warped labels by a voxel (tests/text/test_register_repeats.py). One thread: Colin27 to MNI152, with
    # the demons, 6.7 -> 8.0 s on 2 cores.
    with one_thread():
        reg.Execute(fixed, moving)
    return start, float(reg.GetMetricValue())


_THREADS = threading.Lock()


@contextmanager
def one_thread():
    """SimpleITK's global default thread count set to 1 inside, restored after. Held by one caller at a time: two
    registrations at once (a server's requests) each saved the count the other had set, and the later one to finish
    left it at 1 for every SimpleITK filter after (tests/text/test_register_threads.py)."""
    import SimpleITK as sitk

    with _THREADS:
        threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
        try:
            yield
        finally:
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _demons(fixed, moving, affine, iterations: int):
    import SimpleITK as sitk

    placed = sitk.Resample(moving, fixed, affine, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    brain = sitk.BinaryDilate(sitk.Cast(placed > 0, sitk.sitkUInt8), [3, 3, 3])
    fixed_brain = sitk.Mask(fixed, brain)
    matched = sitk.HistogramMatching(placed, fixed_brain, 128, 7, True)
    demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
    demons.SetNumberOfIterations(iterations)
    demons.SetStandardDeviations(1.5)
    field = demons.Execute(fixed_brain, matched)
    composite = sitk.CompositeTransform(affine)
    composite.AddTransform(sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64)))
    return composite


def register(scan, template, spacing: float = 2.0, demons_iterations: int = 40) -> Registration:
    """Register ``template`` (skull-stripped, SimpleITK) to ``scan`` (SimpleITK); see the module recipe.

    Args:
        scan: the brain MR (fixed image), any spacing and orientation.
        template: the template T1 (moving image), zero outside the brain.
        spacing: working grid, mm.
        demons_iterations: demons iterations (0: affine only).

    Returns:
        The Registration; ``check`` it before use.
    """
    import SimpleITK as sitk

    begin = time.perf_counter()
    fixed, moving = _resampled(scan, spacing), _resampled(template, spacing)
    affine, metric = _affine(fixed, moving)
    ratio = 1.0 / abs(float(np.linalg.det(np.array(sitk.AffineTransform(affine).GetMatrix()).reshape(3, 3))))
    # an affine that found no brain fails the check whatever follows: no deformable stage for it
    deform = demons_iterations and metric <= MI_FLOOR
    transform = _demons(fixed, moving, affine, demons_iterations) if deform else affine
    return Registration(transform, metric, ratio, time.perf_counter() - begin)


def check(reg: Registration, in_view: float, what: str) -> None:
    """Refuse a registration that did not find a brain (module docstring: the three tests).

    Args:
        reg: the registration.
        in_view: part of the placed template brain inside the scan's field of view.
        what: the scan, for messages.

    Raises:
        MedsegError: one line naming the failed test and its measured value.
    """
    lo, hi = SCALE_RANGE
    if reg.metric > MI_FLOOR:
        raise MedsegError(f"{what} does not look like a brain MR to the atlas route: registration to the "
                          f"template reached mutual information {reg.metric:.3f} (needs <= {MI_FLOOR})")
    if not lo <= reg.volume_ratio <= hi:
        raise MedsegError(f"{what}: registration to the template failed (it scaled the brain volume by "
                          f"{reg.volume_ratio:.2f}, plausible {lo}..{hi}; MI {reg.metric:.3f})")
    if in_view < IN_VIEW:
        raise MedsegError(f"{what}: only {in_view:.0%} of the registered template brain lies inside the scan "
                          f"(needs {IN_VIEW:.0%}); the atlas route needs the whole brain in view")
