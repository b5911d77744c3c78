"""A volume on SAM3D's model grid: windowed slices resized as LiteMedSAM's encoder input, their frozen
embeddings stacked along z, and label maps / probabilities moved between the model grid and the scan.

Every slice (z, y, x) goes through LiteMedSAM's own preprocessing (``ResizeLongest``: longest side to
256, min-max to 0..1, zero pad bottom/right), so the stacked embeddings are exactly what the promptable
model sees. The decoder predicts on half that grid (128x128 per slice, ``OUT_SIDE``); predictions are
cropped to the unpadded area and resized bilinearly back to the slice's (H, W).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medseg.preprocess.resize import ResizeLongest

MODEL_SIDE = 256  # encoder input side
EMBED_SIDE = 64
OUT_SIDE = 128  # decoder output side (1/2 of the model grid)


def intensities(windowed: np.ndarray) -> np.ndarray:
    """(Z, H, W) values in 0..255 -> (Z, 256, 256) float32 encoder inputs (grey, 0..1, padded)."""
    tf = ResizeLongest(tuple(windowed.shape[1:]), MODEL_SIDE)
    return np.stack([tf.image_array(s)[0, 0] for s in windowed]).astype(np.float32)


def encode(encode_batch: Callable[[np.ndarray], np.ndarray], grey: np.ndarray, batch: int = 4,
           progress: bool = False, desc: str = "encode slices") -> np.ndarray:
    """(Z, 256, 256) encoder inputs -> (Z, 256, 64, 64) float16 embeddings.

    Args:
        encode_batch: (B, 3, 256, 256) float32 -> (B, 256, 64, 64) (an engine's ``encode`` on numpy).
        grey: output of :func:`intensities`.
    """
    from tqdm import tqdm

    out = np.empty((len(grey), 256, EMBED_SIDE, EMBED_SIDE), np.float16)
    for start in tqdm(range(0, len(grey), batch), desc=desc, disable=not progress, leave=False):
        part = grey[start:start + batch]
        out[start:start + len(part)] = encode_batch(np.repeat(part[:, None], 3, axis=1))
    return out


def engine_encoder(engine) -> Callable[[np.ndarray], np.ndarray]:
    """numpy in/out wrapper of ``engine.encode`` (a ``medseg.engine`` Engine)."""
    import torch

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return engine.encode(torch.from_numpy(np.ascontiguousarray(batch))).float().numpy()

    return run


def labels_on_grid(labels: np.ndarray, side: int = OUT_SIDE) -> np.ndarray:
    """(Z, H, W) integer labels -> (Z, side, side) int16 by nearest neighbour on the padded grid."""
    import torch
    from torch.nn import functional as F

    tf = ResizeLongest(tuple(labels.shape[1:]), side)
    h, w = tf.scaled
    moved = F.interpolate(torch.from_numpy(labels.astype(np.float32))[None], size=(h, w), mode="nearest")[0]
    out = np.zeros((len(labels), side, side), np.int16)
    out[:, :h, :w] = moved.numpy().astype(np.int16)
    return out


def to_original(probs: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """(K, n, 128, 128) probabilities on the output grid -> (n, H, W) argmax labels of the slices."""
    import torch
    from torch.nn import functional as F

    tf = ResizeLongest(tuple(shape_hw), OUT_SIDE)
    h, w = tf.scaled
    cropped = torch.from_numpy(np.ascontiguousarray(probs[:, :, :h, :w])).permute(1, 0, 2, 3)
    big = F.interpolate(cropped, size=tuple(shape_hw), mode="bilinear", align_corners=False)
    return big.argmax(1).numpy().astype(np.uint16)
