"""Running the exported graphs with numpy arrays in and out (no torch import).

The exported decoder contains the prompt encoder (``medseg.engine.export``), so a prompt reaches it
as plain arrays: point coordinates and labels, with a box as two corner points labelled 2 and 3 (as
in SAM's own ONNX export), a low-res mask with a flag saying whether it is used, and the indices of
the mask tokens to upscale. ``Graphs`` is the runtime-neutral part; ``OrtGraphs`` and
``OpenVINOGraphs`` only say how a graph is run.
"""

from __future__ import annotations

import numpy as np

NOT_A_POINT, BOX_TOP_LEFT, BOX_BOTTOM_RIGHT = -1.0, 2.0, 3.0
SINGLE_MASK_TOKEN, MULTIMASK_TOKENS = np.array([0], np.int64), np.array([1, 2, 3], np.int64)
GRID, CELL = 64, 4  # embedding cells a side; low-res logit pixels a cell
FULL = (0, 0, GRID, GRID)
OUTSIDE = -20.0  # low-res logit of the pixels outside a decoded window (no mask there)
PE = "pe"  # the decoder's input of the positional encoding; the graph holds the whole grid's as its default


def channels_last(embeddings: np.ndarray) -> np.ndarray:
    """(B, 256, 64, 64) embeddings with the same values, laid out channels last in memory (a transposed view of a
    (B, 64, 64, 256) array): the decoder graph takes them so, without a copy (``Graphs.decode``). 1 ms a slice."""
    return np.ascontiguousarray(np.asarray(embeddings, np.float32).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def graph_default(path, name: str) -> np.ndarray:
    """The default value (initializer) of input ``name`` of the ONNX graph at ``path``."""
    import onnx
    from onnx import numpy_helper

    for init in onnx.load(str(path)).graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    raise KeyError(f"{path} has no default for {name}")


def decode_window(region: np.ndarray, margin: int) -> tuple[int, int, int, int] | None:
    """The embedding cells (row0, col0, row1, col1), ends exclusive, around a model-space (X0, Y0, X1, Y1)
    region widened by ``margin`` cells; None when that is the whole grid.

    A windowed decode runs the decoder on those cells alone (``Graphs.decode(window=...)``): its attention
    sees no image token outside them, so it is not the trained model's answer but a local approximation of
    it, 3-5x cheaper on small regions; the callers that use it and what it changed are in
    ``medseg.predict.correct``.
    """
    x0, y0, x1, y1 = (float(v) for v in np.asarray(region, np.float32).reshape(4))
    window = (max(int(np.floor(y0 / CELL)) - margin, 0), max(int(np.floor(x0 / CELL)) - margin, 0),
              min(int(np.floor(y1 / CELL)) + 1 + margin, GRID), min(int(np.floor(x1 / CELL)) + 1 + margin, GRID))
    return None if window == FULL else window


Cells = tuple[int, int, int, int]


def within_cells(crop: Cells | None, window: Cells) -> Cells:
    """The cells of ``crop`` inside ``window`` (all of the window when crop is None or does not meet it)."""
    if crop is None:
        return window
    part = (max(crop[0], window[0]), max(crop[1], window[1]), min(crop[2], window[2]), min(crop[3], window[3]))
    return part if part[2] > part[0] and part[3] > part[1] else window


def paste(logits: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    """(B, K, 4 h, 4 w) logits of a window -> (B, K, 256, 256), OUTSIDE elsewhere."""
    out = np.full((*logits.shape[:2], GRID * CELL, GRID * CELL), OUTSIDE, np.float32)
    r0, c0, r1, c1 = window
    out[..., r0 * CELL:r1 * CELL, c0 * CELL:c1 * CELL] = logits
    return out


def prompt_tokens(points: tuple[np.ndarray, np.ndarray] | None,
                  boxes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Points and boxes in model space -> coords (B, T, 2) float32 and labels (B, T) float32.

    Args:
        points: (coords (B, N, 2) as (X, Y), labels (B, N): 1 positive, 0 negative), or None.
        boxes: (B, 4) as (X0, Y0, X1, Y1), or None.

    Points come first, then the two box corners; without a box, one padding point (label -1) is
    appended, exactly as ``PromptEncoder`` orders its tokens.
    """
    coords, labels = [], []
    if points is not None:
        xy = np.asarray(points[0], np.float32)
        coords.append(xy)
        labels.append(np.asarray(points[1], np.float32).reshape(xy.shape[:2]))
        if boxes is None:
            coords.append(np.zeros((xy.shape[0], 1, 2), np.float32))
            labels.append(np.full((xy.shape[0], 1), NOT_A_POINT, np.float32))
    if boxes is not None:
        corners = np.asarray(boxes, np.float32).reshape(-1, 2, 2)
        coords.append(corners)
        labels.append(np.tile(np.array([[BOX_TOP_LEFT, BOX_BOTTOM_RIGHT]], np.float32), (len(corners), 1)))
    if not coords:
        coords, labels = [np.zeros((1, 0, 2), np.float32)], [np.zeros((1, 0), np.float32)]
    return np.concatenate(coords, axis=1), np.concatenate(labels, axis=1)


class Graphs:
    """Encoder and decoder graphs behind numpy calls; subclasses implement ``_encode`` and ``_decode``.

    The methods take numpy arrays (or anything ``np.asarray`` accepts, such as CPU tensors) and
    return numpy arrays, with the shapes of ``medseg.engine.Engine``.
    """

    name = "graphs"
    arrays = True  # Predictor: feed numpy, not torch tensors
    decoder_path = None  # the decoder's ONNX file (its default positional encoding is read from it)
    _pe: np.ndarray | None = None

    def _encode(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _decode(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def encode(self, images: np.ndarray) -> np.ndarray:
        """(B, 3, 256, 256) preprocessed float32 images -> (B, 256, 64, 64) embeddings."""
        return self._encode(np.ascontiguousarray(images, dtype=np.float32))

    def open_lanes(self) -> int:
        """How many slices ``encode_lane`` may encode side by side (1: no side-by-side encoder)."""
        return 1

    def encode_lane(self, images: np.ndarray, tag: object = None) -> np.ndarray:
        """``encode`` on an encoder safe to run beside others (after ``open_lanes``); ``tag`` names the
        run for ``stop_lanes``."""
        return self._encode_lane(np.ascontiguousarray(images, dtype=np.float32), tag)

    def _encode_lane(self, images: np.ndarray, tag: object) -> np.ndarray:
        return self._encode(images)

    def stop_lanes(self, tags: list) -> None:
        """End the running lane encodes with these tags (they raise); runtimes that cannot, let them run."""

    def positional_encoding(self) -> np.ndarray:
        """(1, 64, 64, 256) positional encoding of the embedding grid, read once from the decoder graph."""
        if self._pe is None:
            self._pe = graph_default(self.decoder_path, PE)
        return self._pe

    def decode(self, embeddings: np.ndarray, points: tuple[np.ndarray, np.ndarray] | None = None,
               boxes: np.ndarray | None = None, masks: np.ndarray | None = None,
               multimask: bool = False, window: tuple[int, int, int, int] | None = None,
               crop: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Prompts in model space -> logits (B, K, 256, 256) and IoU (B, K); K = 3 with multimask, else 1.

        Arguments and shapes as ``PromptableSAM.decode``; embeddings (1 or B, 256, 64, 64), fastest when laid out
        channels last (``channels_last``: then the whole grid goes to the graph without a copy). ``window``: decode
        only these embedding cells (``decode_window``); the logits are OUTSIDE beyond them. ``crop``: the cells whose
        logits are wanted (exact: only the upscaling is skipped elsewhere); OUTSIDE beyond them.
        """
        tokens_last = np.asarray(embeddings, np.float32).transpose(0, 2, 3, 1)  # a view
        coords, labels = prompt_tokens(points, boxes)
        cells = FULL if window is None else tuple(int(v) for v in window)
        r0, c0, r1, c1 = cells
        if masks is None:  # a 4x4 stand-in: the graph multiplies its (1, 1, 1, 256) embedding by 0
            mask, has_mask = np.zeros((1, 1, 4, 4), np.float32), np.zeros(1, np.float32)
        else:  # the mask's downscaling is local (stride-2 kernels of 2, then 1x1), so cropping it first is exact
            mask = np.ascontiguousarray(np.asarray(masks, np.float32)[..., r0 * CELL:r1 * CELL, c0 * CELL:c1 * CELL])
            has_mask = np.ones(1, np.float32)
        # Only the masks asked for are upscaled: token 0 is the single mask, tokens 1-3 the multimask output.
        tokens = MULTIMASK_TOKENS if multimask else SINGLE_MASK_TOKEN
        part = within_cells(None if crop is None else tuple(int(v) for v in crop), cells)
        inside = np.array([part[0] - r0, part[1] - c0, part[2] - r0, part[3] - c0], np.int64)
        pe = np.ascontiguousarray(self.positional_encoding()[:, r0:r1, c0:c1])  # no copy for the whole grid
        feeds = {PE: pe, "has_mask": has_mask, "mask_tokens": tokens, "crop": inside}

        def run(i: int) -> tuple[np.ndarray, np.ndarray]:  # one embedding per prompt
            one = len(tokens_last) == 1
            return self._decode({"embeddings": np.ascontiguousarray(tokens_last[i:i + 1, r0:r1, c0:c1]),
                                 "coords": coords if one else coords[i:i + 1],
                                 "labels": labels if one else labels[i:i + 1],
                                 "mask": mask if one or len(mask) == 1 else mask[i:i + 1], **feeds})

        if len(tokens_last) == 1:
            logits, iou = run(0)
        else:
            parts = [run(i) for i in range(len(tokens_last))]
            logits, iou = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        return (logits if part == FULL else paste(logits, part)), iou
