"""The interactive 2D API: encode a slice once (``set_image``), answer many prompts (``predict``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from medseg.engine import Engine, get_engine
from medseg.modeling.sam import PromptableSAM
from medseg.preprocess.resize import ResizeLongest


@dataclass
class Prediction:
    """Result of one prompt.

    Attributes:
        masks: (K, H, W) bool masks on the slice's grid (K = 1, or 3 with multimask).
        iou: (K,) predicted IoU of each mask.
        low_res_logits: (K, 256, 256) model-space logits, usable as a later mask prompt.
    """

    masks: np.ndarray
    iou: np.ndarray
    low_res_logits: np.ndarray

    def best(self) -> np.ndarray:
        """The (H, W) mask with the highest predicted IoU."""
        return self.masks[int(np.argmax(self.iou))]


class Predictor:
    """Promptable segmentation of one 2D slice.

    Example:
        >>> p = Predictor(build_model())
        >>> p.set_image(slice_0_255)           # (H, W) or (H, W, 3), values 0..255
        >>> p.predict(box=[x0, y0, x1, y1]).masks[0]

    Args:
        model: the network (from ``medseg.build.build_model``).
        engine: how it runs: "auto" (the fastest installed runtime, see ``medseg.engine``), "eager",
            "onnx", "openvino", or an Engine instance.
    """

    def __init__(self, model: PromptableSAM, engine: str | Engine = "auto") -> None:
        self.model = model
        self.engine = engine if isinstance(engine, Engine) else get_engine(model, engine)
        self.input_size = model.prompt_encoder.input_size[0]
        self._embedding: torch.Tensor | None = None
        self._transform: ResizeLongest | None = None

    def set_image(self, slice_0_255: np.ndarray) -> None:
        """Encode a slice. (H, W) grey or (H, W, 3) RGB, values already windowed to 0..255."""
        self._transform = ResizeLongest(tuple(slice_0_255.shape[:2]), self.input_size)
        self._embedding = self.engine.encode(self._transform.image(slice_0_255))

    def set_embedding(self, embedding: torch.Tensor, original: tuple[int, int]) -> None:
        """Reuse a cached (1, 256, 64, 64) embedding of a slice of size original = (H, W)."""
        self._transform = ResizeLongest(original, self.input_size)
        self._embedding = embedding

    @property
    def embedding(self) -> torch.Tensor:
        if self._embedding is None:
            raise RuntimeError("call set_image() before predict()")
        return self._embedding

    @torch.no_grad()
    def predict(self, box: np.ndarray | list[float] | None = None, points: np.ndarray | None = None,
                point_labels: np.ndarray | None = None, mask_input: np.ndarray | None = None,
                multimask: bool = False) -> Prediction:
        """Segment one object.

        Args:
            box: (4,) as (x0, y0, x1, y1) inclusive pixel corners on the slice, or None.
            points: (N, 2) as (x, y) pixels, or None.
            point_labels: (N,) 1 = positive, 0 = negative; defaults to all positive.
            mask_input: (1, 256, 256) low-res logits from an earlier Prediction, or None.
            multimask: return three candidate masks with their predicted IoU.
        """
        emb, tf = self.embedding, self._transform
        pts = None
        if points is not None and len(points):
            labels = np.ones(len(points)) if point_labels is None else np.asarray(point_labels)
            pts = (torch.from_numpy(tf.coords(points)).reshape(1, -1, 2),
                   torch.as_tensor(labels, dtype=torch.int64).reshape(1, -1))
        boxes = None if box is None else torch.from_numpy(tf.coords(np.asarray(box, np.float32))).reshape(1, 4)
        masks = None
        if mask_input is not None:
            prior = torch.as_tensor(mask_input, dtype=torch.float32)
            masks = prior.reshape(1, 1, *prior.shape[-2:])
        if pts is None and boxes is None and masks is None:
            raise ValueError("predict() needs a box, points or a mask prompt")
        logits, iou = self.engine.decode(emb, points=pts, boxes=boxes, masks=masks, multimask=multimask)
        full = tf.logits(logits)[0]
        return Prediction(masks=(full > 0).numpy(), iou=iou[0].numpy(), low_res_logits=logits[0].numpy())

    @torch.no_grad()
    def predict_boxes(self, boxes: np.ndarray, batch: int = 64) -> np.ndarray:
        """Segment many objects from boxes in decoder batches.

        Args:
            boxes: (N, 4) as (x0, y0, x1, y1) inclusive pixel corners.

        Returns:
            (N, H, W) bool masks.
        """
        tf, out = self._transform, []
        for start in range(0, len(boxes), batch):
            chunk = torch.from_numpy(tf.coords(boxes[start:start + batch]))
            logits, _ = self.engine.decode(self.embedding, boxes=chunk)
            out.append((tf.logits(logits)[:, 0] > 0).numpy())
        return np.concatenate(out) if out else np.zeros((0, *tf.original), bool)
