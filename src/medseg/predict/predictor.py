"""The interactive 2D API: encode a slice once (``set_image``), answer many prompts (``predict``).

With an engine that takes numpy arrays (``medseg.engine.graphs.Graphs``, e.g. ONNX Runtime started
from the engine cache) the whole path runs without importing torch; with a torch Engine, the
pre- and postprocessing run in torch as before.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from medseg.engine import get_engine
from medseg.errors import MedsegError
from medseg.predict.read_ahead import ReadAhead
from medseg.preprocess.resize import ResizeLongest

if TYPE_CHECKING:
    from medseg.engine import Engine
    from medseg.modeling.sam import PromptableSAM


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


# Embedding cells (4 low-res logit pixels each) a windowed decode (``predict(within=...)``) sees beyond its
# region. On 40 RIDER tumour slices x 3 box sizes, the windowed mask's IoU with the whole-slice mask inside the
# box was 0.937 / 0.947 / 0.953 / 0.965 (mean) for 1 / 2 / 4 / 8 cells (scratch experiment, 2026-12-04).
WINDOW_MARGIN = 8
# Cells beyond its region that an exact partial decode (``predict(only=...)``) upscales: the resize of the logits
# to the slice reads at most one low-res pixel beyond a mask pixel, and a cell holds four.
ONLY_MARGIN = 1


class Predictor:
    """Promptable segmentation of one 2D slice.

    Example:
        >>> p = Predictor(build_model())
        >>> p.set_image(slice_0_255)           # (H, W) or (H, W, 3), values 0..255
        >>> p.predict(box=[x0, y0, x1, y1]).masks[0]

    Args:
        model: the network (from ``medseg.build.build_model``); may be None when ``engine`` is an
            instance of ``medseg.engine.graphs.Graphs`` (exported graphs alone).
        engine: how it runs: "auto" (the fastest installed runtime, see ``medseg.engine``), "eager",
            "onnx", "openvino", or an Engine or Graphs instance.
        click_trained: its decoder was trained for clicks (``litemedsam-interactive``), so a lone click
            is decoded as it is rather than through box proposals (``medseg.predict.click``); default:
            whether the model was built from a card that ships its own decoder.
        box_decoder: another Predictor with the same image encoder whose decoder answers every prompt but
            corrections (``predict(..., correction=True)``): boxes, the box proposals of a lone click,
            propagation; e.g. LiteMedSAM's box-trained decoder beside a click-trained one, which then takes
            the correction clicks. It decodes this predictor's embedding, it never encodes.
    """

    def __init__(self, model: PromptableSAM | None, engine: str | Engine | Any = "auto",
                 click_trained: bool | None = None, box_decoder: Predictor | None = None) -> None:
        if isinstance(engine, str):
            engine = get_engine(model, engine)
        self.model = model
        self.engine = engine
        self._takes_window = _takes(engine, "window")
        self._takes_crop = _takes(engine, "crop")
        if click_trained is None:
            click_trained = getattr(model, "decoder_sha256", None) is not None
        self.click_trained = bool(click_trained)
        self.box_decoder = box_decoder
        self.arrays = bool(getattr(engine, "arrays", False))  # numpy in and out, no torch
        self.input_size = model.prompt_encoder.input_size[0] if model is not None else engine.input_size
        self._embedding: Any = None  # (1, 256, 64, 64): a torch tensor, or a numpy array with ``arrays``
        self._transform: ResizeLongest | None = None

    def twin(self) -> Predictor:
        """A Predictor with its own slice state on the same model, engine and box decoder (one per session of
        a server; the box decoder keeps no state between calls)."""
        return Predictor(self.model, engine=self.engine, click_trained=self.click_trained, box_decoder=self.box_decoder)

    @property
    def direct_clicks(self) -> bool:
        """Whether a lone click is decoded as it is: a click-trained decoder with no box decoder beside it.
        Otherwise a lone click goes through box proposals (``medseg.predict.click``), which the box decoder
        answers; the click-trained decoder then takes the corrections."""
        return self.click_trained and self.box_decoder is None

    def set_image(self, slice_0_255: np.ndarray) -> None:
        """Encode a slice. (H, W) grey or (H, W, 3) RGB, values already windowed to 0..255."""
        self._transform = ResizeLongest(tuple(slice_0_255.shape[:2]), self.input_size)
        self._embedding = self.embed(slice_0_255)

    def embed(self, slice_0_255: np.ndarray, lane: bool = False, tag: object = None) -> Any:
        """The embedding of a slice, leaving the predictor's own slice as it is.

        With ``lane``, on the engine's side-by-side encoder (``open_lanes``): safe on worker threads;
        ``tag`` names the run for ``stop_lanes``. Without, on its encoder for all the cores.
        """
        tf = ResizeLongest(tuple(slice_0_255.shape[:2]), self.input_size)
        images = tf.image_array(slice_0_255) if self.arrays else tf.image(slice_0_255)
        emb = self.engine.encode_lane(images, tag) if lane else self.engine.encode(images)
        if self.arrays:  # kept channels last: every later decode of the slice takes it without a copy
            from medseg.engine.graphs import channels_last

            emb = channels_last(emb)
        return emb

    def stop_lanes(self, tags: list) -> None:
        """End the running ``embed(..., lane=True, tag=t)`` calls for t in tags, where the engine can."""
        if hasattr(self.engine, "stop_lanes"):
            self.engine.stop_lanes(tags)

    def read_ahead(self, order: Sequence[Hashable], image_of: Callable[[Hashable], np.ndarray]) -> ReadAhead | None:
        """Slices ``image_of(z)`` for z in ``order`` encoded ahead on the engine's lanes, or None if it has none."""
        lanes = self.open_lanes()
        if lanes < 2:
            return None
        token = object()  # tags unique to this read-ahead
        return ReadAhead(lambda z: self.embed(image_of(z), lane=True, tag=(token, z)), order, lanes,
                         stop=lambda zs: self.stop_lanes([(token, z) for z in zs]),
                         encode_alone=lambda z: self.embed(image_of(z)))

    def open_lanes(self) -> int:
        """How many slices ``embed(..., lane=True)`` may encode side by side (1: none)."""
        return self.engine.open_lanes() if hasattr(self.engine, "open_lanes") else 1

    def set_embedding(self, embedding: Any, original: tuple[int, int]) -> None:
        """Reuse a cached (1, 256, 64, 64) embedding of a slice of size original = (H, W)."""
        self._transform = ResizeLongest(original, self.input_size)
        self._embedding = embedding

    @property
    def embedding(self) -> Any:
        if self._embedding is None:
            raise RuntimeError("call set_image() before predict()")
        return self._embedding

    def _decode(self, points: tuple[np.ndarray, np.ndarray] | None, boxes: np.ndarray | None,
                masks: np.ndarray | None, multimask: bool, correction: bool = False,
                window: tuple[int, int, int, int] | None = None,
                crop: tuple[int, int, int, int] | None = None, region: tuple[int, int, int, int] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Model-space prompts (numpy) -> logits on the slice's grid (only the pixels of ``region``, (row0, col0,
        row1, col1), when given), IoU, low-res logits (numpy)."""
        tf = self._transform
        if self.box_decoder is not None and not correction:
            other = self.box_decoder
            emb = self.embedding
            if other.arrays != self.arrays:  # one runs on numpy, the other on torch
                import torch

                emb = np.asarray(emb) if other.arrays else torch.from_numpy(np.asarray(emb))
            other._embedding, other._transform = emb, tf
            return other._decode(points, boxes, masks, multimask, window=window, crop=crop, region=region)
        local = {} if window is None or not self._takes_window else {"window": window}
        if crop is not None and self._takes_crop:
            local["crop"] = crop
        if self.arrays:
            logits, iou = self.engine.decode(self.embedding, points, boxes, masks, multimask, **local)
            return tf.logits_array(logits, region), iou, logits
        import torch

        with torch.no_grad():
            pts = None if points is None else (torch.from_numpy(points[0]), torch.from_numpy(points[1]))
            logits, iou = self.engine.decode(self.embedding, points=pts,
                                             boxes=None if boxes is None else torch.from_numpy(boxes),
                                             masks=None if masks is None else torch.from_numpy(masks),
                                             multimask=multimask, **local)
            return tf.logits(logits).numpy(), iou.numpy(), logits.numpy()

    def predict(self, box: np.ndarray | list[float] | None = None, points: np.ndarray | None = None,
                point_labels: np.ndarray | None = None, mask_input: np.ndarray | None = None,
                multimask: bool = False, correction: bool = False, within: np.ndarray | None = None,
                only: np.ndarray | None = None) -> Prediction:
        """Segment one object.

        Args:
            box: (4,) as (x0, y0, x1, y1) inclusive pixel corners on the slice, or None.
            points: (N, 2) as (x, y) pixels, or None.
            point_labels: (N,) 1 = positive, 0 = negative; defaults to all positive.
            mask_input: (1, 256, 256) low-res logits from an earlier Prediction, or None.
            multimask: return three candidate masks with their predicted IoU.
            correction: the prompt corrects an earlier result (clicks after the first prompt, usually with
                its logits as ``mask_input``): the click-trained decoder answers it even with a
                ``box_decoder`` beside it.
            within: (4,) (x0, y0, x1, y1) pixels: only the mask inside this region is wanted, so the decoder
                runs on the embedding cells around it alone (``WINDOW_MARGIN`` cells beyond it; see
                ``medseg.engine.graphs.decode_window``): a local approximation, 3-5x faster on small regions;
                no mask pixel lies beyond those cells. None: the whole slice, the model as trained.
            only: (4,) (x0, y0, x1, y1) pixels: only the mask inside this region is wanted, exactly as the whole
                decode gives it: the decoder runs as trained, but its upscaling covers only the cells under the
                region (``ONLY_MARGIN`` cells beyond it), so the mask and ``low_res_logits`` are empty (-20)
                beyond those. Cheaper by the upscaling's share of a decode (about a quarter).
        """
        self.embedding  # noqa: B018 - fails early without set_image
        tf = self._transform
        pts = None
        if points is not None and len(points):
            points = prompt_array(points, "points", (-1, 2))
            labels = np.ones(len(points)) if point_labels is None else prompt_array(point_labels, "point_labels",
                                                                                    (len(points),))
            if not np.isin(labels, (0, 1)).all():
                raise MedsegError(f"point_labels {labels.tolist()}: each must be 1 (positive) or 0 (negative)")
            pts = (tf.coords(points).reshape(1, -1, 2), labels.astype(np.int64).reshape(1, -1))
        boxes = None if box is None else tf.coords(prompt_array(box, "box", (4,))).reshape(1, 4)
        masks = None
        if mask_input is not None:
            prior = np.asarray(mask_input, dtype=np.float32)
            masks = np.ascontiguousarray(prior.reshape(1, 1, *prior.shape[-2:]))
        if pts is None and boxes is None and masks is None:
            raise ValueError("predict() needs a box, points or a mask prompt")
        window = None
        if within is not None:
            from medseg.engine.graphs import decode_window

            window = decode_window(tf.coords(prompt_array(within, "within", (4,))), WINDOW_MARGIN)
        crop = region = None
        if only is not None:
            from medseg.engine.graphs import decode_window

            only = prompt_array(only, "only", (4,))
            crop = decode_window(tf.coords(only), ONLY_MARGIN)
            (height, width), (x0, y0, x1, y1) = tf.original, only
            region = (max(int(np.floor(y0)), 0), max(int(np.floor(x0)), 0), min(int(np.ceil(y1)) + 1, height),
                      min(int(np.ceil(x1)) + 1, width))
        full, iou, logits = self._decode(pts, boxes, masks, multimask, correction, window, crop, region)
        return Prediction(masks=full[0] > 0, iou=iou[0], low_res_logits=logits[0])

    def predict_boxes(self, boxes: np.ndarray, batch: int = 64) -> np.ndarray:
        """Segment many objects from boxes in decoder batches.

        Args:
            boxes: (N, 4) as (x0, y0, x1, y1) inclusive pixel corners.

        Returns:
            (N, H, W) bool masks.
        """
        self.embedding  # noqa: B018 - fails early without set_image
        boxes = prompt_array(boxes, "boxes", (-1, 4))
        tf, out = self._transform, []
        for start in range(0, len(boxes), batch):
            full, _, _ = self._decode(None, tf.coords(boxes[start:start + batch]), None, False)
            out.append(full[:, 0] > 0)
        return np.concatenate(out) if out else np.zeros((0, *tf.original), bool)


def _takes(engine: Any, name: str) -> bool:
    """Whether ``engine.decode`` takes ``name`` (``window``, ``crop``: medseg's engines do); an engine that does not
    decodes the whole slice, which a windowed or cropping caller crops anyway."""
    import inspect

    try:
        return name in inspect.signature(engine.decode).parameters
    except (TypeError, ValueError):
        return False


def prompt_array(values: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """``values`` as a float32 array of ``shape`` (-1: any length) holding finite numbers, or a MedsegError."""
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):  # ragged lists
        array = np.asarray([], dtype=object)
    fits = array.ndim == len(shape) and all(w in (-1, n) for w, n in zip(shape, array.shape, strict=True))
    bools = fits and not isinstance(values, np.ndarray) and any(
        isinstance(v, (bool, np.bool_)) for v in np.asarray(values, dtype=object).ravel())
    if not fits or bools or array.dtype.kind not in "iuf":  # b (bools), O, U: not numbers
        want = " x ".join("N" if n == -1 else str(n) for n in shape)
        raise MedsegError(f"{name}: expected {want} numbers, got {_shown(values)}")
    with np.errstate(over="ignore", invalid="ignore"):
        as_float = array.astype(np.float32)
    if not np.isfinite(as_float).all():
        raise MedsegError(f"{name} {_shown(array.tolist())}: must hold finite numbers (no NaN or infinity)")
    return as_float


def _shown(values: Any) -> str:
    text = repr(values)
    return text if len(text) <= 60 else text[:57] + "..."


def load_predictor(model: str | None = None, checkpoint: str | None = None, engine: str = "auto",
                   without_torch: bool = True) -> Predictor:
    """A Predictor for a model name (or fine-tuned model.pt) and checkpoint, as ``medseg segment`` makes it.

    When ``without_torch`` is set and the engine is native or ONNX Runtime ("auto", "native" or "onnx"), it runs on
    numpy, onnxruntime (and the compiled encoder) alone: once the model's files are exported (``medseg.engine.cache``;
    the first call exports them), torch is never imported, which saves the 1-2 s of ``import torch`` and the model
    build. Otherwise the model is built and the engine made as usual (torch tensors around each decode).

    A card whose ``boxes`` names another model gets that model's predictor as ``box_decoder``: box-only
    prompts are decoded by it (what measures best for boxes), everything with points by this model.
    """
    from medseg.registry import DEFAULT_MODEL, MODELS

    card = MODELS.get(model or DEFAULT_MODEL) if checkpoint is None else None
    predictor = _load_predictor(model, checkpoint, engine, without_torch)
    if card is not None and card.boxes:
        predictor.box_decoder = _load_predictor(card.boxes, None, engine, without_torch)
    return predictor


def _load_predictor(model: str | None, checkpoint: str | None, engine: str, without_torch: bool) -> Predictor:
    if without_torch and engine in ("auto", "native", "onnx"):
        from medseg.cpu import default_threads
        from medseg.engine import auto_order, available
        from medseg.engine.cache import cached_graphs, checkpoint_sha256
        from medseg.registry import DEFAULT_MODEL, MODELS

        card = MODELS.get(model or DEFAULT_MODEL)
        trained = card is not None and card.decoder is not None
        name = auto_order()[0] if engine == "auto" else engine
        graphs = None
        if name in ("native", "onnx") and (engine == "auto" or available(name)):  # auto_order checked it
            graphs = cached_graphs(model, checkpoint, native=name == "native")
            if graphs is None and checkpoint_sha256(model, checkpoint) is not None:  # not exported yet: once
                from medseg.build import build_model
                from medseg.engine.export import onnx_files

                built = build_model(model, checkpoint)
                if getattr(built, "checkpoint_sha256", None):
                    onnx_files(built)
                    graphs = cached_graphs(model, checkpoint, native=name == "native")
                if graphs is None:
                    return Predictor(built, engine=engine)
        if graphs is not None and name == "native":
            from medseg.engine.native_graphs import NativeGraphs

            return Predictor(None, engine=NativeGraphs(*graphs, default_threads()), click_trained=trained)
        if graphs is not None:
            from medseg.engine.ort_graphs import OrtGraphs

            return Predictor(None, engine=OrtGraphs(*graphs, default_threads()), click_trained=trained)
    from medseg.build import build_model

    return Predictor(build_model(model, checkpoint), engine=engine)
