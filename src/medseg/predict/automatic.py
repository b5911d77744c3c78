"""Automatic (prompt-free) multi-class segmentation with a trained SAM3D model file.

>>> model = load_automatic("RUN/model.pt")
>>> model.class_names          # {1: "Left_Caudate", ...}
>>> labels = model.segment(image)   # a medseg.io.Image volume -> (z, y, x) uint16 on its grid

The model file (``medseg train --mode sam3d`` writes it; ``FORMAT``) holds the decoder's weights and
architecture, the class names (label value -> name), the frozen encoder's identity (model card and
checkpoint sha256, checked against the encoder that will run) and the input it was trained on
(modality, channels, window). ``segment`` refuses a scan of another modality or channel count with a
one-line MedsegError. Inference slides a window of ``depth`` slices over z with half-window overlap:
only the slices of the current window are encoded and held, and each slice's class probabilities are
finished (averaged over the windows that saw it, resized to the slice and argmaxed) as soon as the
window has passed, so memory is bounded by the window, not the volume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medseg.errors import MedsegError
from medseg.io.image import Image

FORMAT = "medseg-sam3d/1"


def is_sam3d_file(path: str | os.PathLike | None) -> bool:
    """True when ``path`` is a file holding a SAM3D model (read with weights_only; False otherwise)."""
    if path is None or not Path(path).is_file():
        return False
    import zipfile

    try:  # torch files are zip archives; the format string sits in data.pkl
        with zipfile.ZipFile(path) as archive:
            pickle = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            return pickle is not None and FORMAT.encode() in archive.read(pickle)
    except (zipfile.BadZipFile, OSError):
        return False


@dataclass
class AutomaticModel:
    """A loaded SAM3D model: decoder, class names, encoder identity and input expectations."""

    decoder: object  # medseg.modeling.sam3d.Sam3DDecoder
    class_names: dict[int, str]
    encoder: dict  # {"model": card name, "sha256": checkpoint sha256}
    inputs: dict  # {"modality": "CT"|"MR", "channels": 1, "window": name, "spacing": [x, y, z] median}
    depth: int = 16
    path: Path | None = None
    info: dict = field(default_factory=dict)
    engine_name: str = "auto"
    _engine: object = None

    def check(self, image: Image) -> None:
        """Refuse a scan this model was not trained for (one-line MedsegError)."""
        from medseg.preprocess.window import check_finite
        from medseg.train.sam3d_data import modality_of

        what = str(image.path) if image.path else "the scan"
        if not image.is_volume or image.array.ndim != 3:
            channels = image.array.shape[-1] if image.is_rgb or image.array.ndim == 4 else 1
            kind = "a 2D image" if not image.is_volume else "a volume"
            raise MedsegError(f"{what} is {kind} with {channels} channel(s) of shape {image.array.shape}; "
                              f"this SAM3D model segments {self.inputs['channels']}-channel 3D "
                              f"{self.inputs['modality']} volumes")
        check_finite(image.array, what)
        modality = modality_of(image)
        if modality != self.inputs["modality"]:
            raise MedsegError(f"{what} looks like {modality} (modality {image.modality or 'unknown'}, values "
                              f"{image.array.min():g}..{image.array.max():g}); this SAM3D model was trained on "
                              f"{self.inputs['modality']}")

    def engine(self):
        if self._engine is None:
            from medseg.build import build_model
            from medseg.engine import get_engine

            encoder = build_model(self.encoder["model"])
            found = getattr(encoder, "checkpoint_sha256", None)
            if found and found != self.encoder["sha256"]:
                raise MedsegError(f"{self.path}: trained on encoder {self.encoder['model']} with checkpoint sha256 "
                                  f"{self.encoder['sha256'][:12]}..., but the installed one is {found[:12]}...")
            self._engine = get_engine(encoder, self.engine_name)
        return self._engine

    def segment(self, image: Image, progress: bool = False) -> np.ndarray:
        """Label map (z, y, x) uint16 of every class on ``image``'s grid (0 = background)."""
        from medseg.predict.orient import orientation
        from medseg.predict.slice_stack import engine_encoder
        from medseg.preprocess.window import apply_window, choose_window

        self.check(image)
        turn = orientation(image.geometry.direction)  # the axis order the decoder was trained in
        windowed = turn.canonical(apply_window(image.array, choose_window(image.array, image.modality,
                                                                          self.inputs["window"])))
        labels = segment_windowed(self.decoder, windowed, engine_encoder(self.engine()), self.depth, progress)
        return turn.restore(labels)


def segment_windowed(decoder, windowed: np.ndarray, encode_batch, depth: int, progress: bool = False) -> np.ndarray:
    """Sliding-window SAM3D inference over z on a windowed (0..255) volume -> (z, y, x) uint16 labels.

    Args:
        decoder: a Sam3DDecoder (eval mode is set here).
        encode_batch: (B, 3, 256, 256) -> (B, 256, 64, 64) numpy function (the frozen encoder).
        depth: slices per window; windows overlap by half. Only one window's slices are kept encoded.
    """
    from medseg.predict import slice_stack

    held: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def fetch(zs: list[int]) -> tuple[np.ndarray, np.ndarray]:
        for z in [z for z in held if z < zs[0]]:
            del held[z]
        todo = [z for z in zs if z not in held]
        if todo:
            grey = slice_stack.intensities(windowed[todo[0]:todo[-1] + 1])
            emb = slice_stack.encode(encode_batch, grey)
            held.update({z: (emb[i], grey[i]) for i, z in enumerate(todo)})
        return np.stack([held[z][0] for z in zs]), np.stack([held[z][1] for z in zs])

    return sliding_window(decoder, len(windowed), windowed.shape[1:], fetch, depth, progress)


def sliding_window(decoder, z_len: int, shape_hw: tuple[int, int], fetch, depth: int,
                   progress: bool = False) -> np.ndarray:
    """Windows of ``depth`` slices (half overlap) through the decoder; slice probabilities are averaged
    over the windows that saw them and finished (resized to ``shape_hw``, argmaxed) once passed.

    Args:
        fetch: list of slice indices -> (embeddings (n, 256, 64, 64), encoder inputs (n, 256, 256)).
    """
    import torch
    from tqdm import tqdm

    from medseg.predict import slice_stack

    decoder.eval()
    starts = window_starts(z_len, depth)
    out = np.zeros((z_len, *shape_hw), np.uint16)
    acc: dict[int, np.ndarray] = {}
    seen: dict[int, int] = {}
    for n, start in enumerate(tqdm(starts, desc="sam3d", disable=not progress, leave=False)):
        zs = list(range(start, min(start + depth, z_len)))
        emb, grey = fetch(zs)
        emb = torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(emb), 0, 1))[None])
        grey = torch.from_numpy(np.asarray(grey, np.float32)[None, None])
        with torch.no_grad():
            probs = decoder(emb, grey).softmax(1)[0].numpy()  # (K, n, 128, 128)
        for i, z in enumerate(zs):
            acc[z] = acc.get(z, 0) + probs[:, i]
            seen[z] = seen.get(z, 0) + 1
        next_start = starts[n + 1] if n + 1 < len(starts) else z_len
        finished = [z for z in sorted(acc) if z < next_start]  # no later window sees them
        if finished:
            stack = np.stack([acc.pop(z) / seen.pop(z) for z in finished], 1)  # (K, n, 128, 128)
            out[finished[0]:finished[-1] + 1] = slice_stack.to_original(stack, shape_hw)
    return out


def window_starts(z_len: int, depth: int) -> list[int]:
    """First slices of windows of ``depth`` over ``z_len`` slices, overlapping by half, the last flush with the end."""
    if z_len <= depth:
        return [0]
    step = max(1, depth // 2)
    starts = list(range(0, z_len - depth + 1, step))
    if starts[-1] != z_len - depth:
        starts.append(z_len - depth)
    return starts


def load_automatic(path: str | os.PathLike, engine: str = "auto") -> AutomaticModel:
    """Load a SAM3D model file; one-line MedsegError when it is not one or is damaged."""
    from medseg.checkpoints import load_torch_file
    from medseg.modeling.sam3d import Sam3DConfig, Sam3DDecoder

    state = load_torch_file(path, "SAM3D model")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MedsegError(f"{path} is not a SAM3D model file (format {FORMAT}); train one with "
                          "`medseg train --mode sam3d`")
    try:
        config = Sam3DConfig.from_dict(state["config"])
        names = {int(k): str(v) for k, v in state["classes"].items()}
        decoder = Sam3DDecoder(config)
        decoder.load_state_dict(state["decoder"])
        encoder, inputs, depth = dict(state["encoder"]), dict(state["inputs"]), int(state["depth"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        raise MedsegError(f"{path}: damaged SAM3D model file ({why})") from None
    if sorted(names) != list(range(1, config.num_classes)):
        raise MedsegError(f"{path}: class names {sorted(names)} do not match the decoder's "
                          f"{config.num_classes} outputs")
    return AutomaticModel(decoder.eval(), names, encoder, inputs, depth, Path(path), dict(state.get("info", {})),
                          engine)


def model_state(decoder, class_names: dict[int, str], encoder: dict, inputs: dict, depth: int,
                train: dict | None = None, info: dict | None = None, half: bool = False) -> dict:
    """The dict a SAM3D model file holds (``half``: weights stored as float16, loaded back as float32)."""
    weights = {k: (v.half() if half and v.is_floating_point() else v).clone()
               for k, v in decoder.state_dict().items()}
    classes = {int(k): str(v) for k, v in class_names.items()}
    return {"format": FORMAT, "config": decoder.config.to_dict(), "classes": classes,
            "encoder": dict(encoder), "inputs": dict(inputs), "depth": int(depth), "train": dict(train or {}),
            "info": dict(info or {}), "decoder": weights}


def volumes_ml(labels: np.ndarray, spacing_xyz: tuple[float, ...], names: dict[int, str]) -> dict[str, float]:
    """Volume in mL of every class (0.0 for a class not found), by name."""
    voxel_ml = float(np.prod(spacing_xyz)) / 1000.0
    counts = np.bincount(labels.ravel(), minlength=max(names) + 1)
    return {names[v]: round(float(counts[v]) * voxel_ml, 3) for v in sorted(names)}
