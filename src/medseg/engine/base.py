"""The engine interface: how the image encoder and the mask decoder of a PromptableSAM are run.

The eager engine runs the model's own modules. Engines on exported graphs (``GraphEngine``) run the
image encoder and the decoder, which also holds the prompt encoder, in their runtime through a
``medseg.engine.graphs.Graphs`` (numpy in and out, usable without torch). ``decode`` has the signature
and the result of ``PromptableSAM.decode``, so a Predictor can hold either.
"""

from __future__ import annotations

import torch

from medseg.modeling.sam import PromptableSAM

Points = tuple[torch.Tensor, torch.Tensor]


class Engine:
    """Base class: subclasses implement ``encode`` and ``_decode_all``.

    Args:
        model: the network whose weights the engine runs (kept for its prompt encoder).
    """

    name = "base"

    def __init__(self, model: PromptableSAM) -> None:
        self.model = model
        self.prompt_encoder = model.prompt_encoder
        with torch.no_grad():
            self.image_pe = model.prompt_encoder.dense_pe().contiguous()  # (1, 256, 64, 64), fixed

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, 256, 256) preprocessed float32 images -> (B, 256, 64, 64) embeddings."""
        raise NotImplementedError

    def open_lanes(self) -> int:
        """How many slices ``encode_lane`` may encode side by side (1: it is ``encode``, no read-ahead)."""
        return 1

    def encode_lane(self, images: torch.Tensor, tag: object = None) -> torch.Tensor:
        """``encode`` on an encoder safe to run beside others; ``open_lanes`` first. ``tag`` names the
        run for ``stop_lanes``."""
        return self.encode(images)

    def stop_lanes(self, tags: list) -> None:
        """End the running lane encodes with these tags (they raise); engines that cannot, let them run."""

    def _decode_all(self, embeddings: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor,
                    image_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 256, h, w) embedding, (B, T, 256) tokens, (B or 1, 256, h, w) dense, (1, 256, h, w) positional
        encoding -> logits (B, 4, 4 h, 4 w) and IoU (B, 4) of all four mask tokens."""
        raise NotImplementedError

    @torch.no_grad()
    def decode(self, embeddings: torch.Tensor, points: Points | None = None, boxes: torch.Tensor | None = None,
               masks: torch.Tensor | None = None, multimask: bool = False,
               window: tuple[int, int, int, int] | None = None,
               crop: tuple[int, int, int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode prompts against embeddings in model space: arguments, shapes and result as
        ``PromptableSAM.decode`` (logits (B, K, 256, 256), IoU (B, K); K = 3 with multimask, else 1).
        ``window``: decode only these embedding cells (``medseg.engine.graphs.decode_window``); ``crop``: the
        cells whose logits are wanted, OUTSIDE beyond them (``Graphs.decode``)."""
        from medseg.engine.graphs import CELL, FULL, paste, within_cells

        sparse, dense = self.prompt_encoder(points, boxes, masks)
        if masks is None:
            dense = dense[:1]  # the same no-mask embedding for every prompt: let the decoder broadcast it
        r0, c0, r1, c1 = FULL if window is None else window
        embeddings, dense = embeddings[..., r0:r1, c0:c1], dense[..., r0:r1, c0:c1]
        pe = self.image_pe[..., r0:r1, c0:c1]
        if embeddings.shape[0] == 1:
            logits, iou = self._decode_all(embeddings, sparse, dense, pe)
        else:  # one embedding per prompt
            parts = [self._decode_all(embeddings[i:i + 1], sparse[i:i + 1], dense[i:i + 1] if masks is not None
                                      else dense, pe) for i in range(embeddings.shape[0])]
            logits, iou = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        keep = slice(1, None) if multimask else slice(0, 1)
        logits, iou = logits[:, keep], iou[:, keep]
        cells = FULL if window is None else window
        part = within_cells(crop, cells)
        if part != FULL:
            r0, c0, r1, c1 = (a - b for a, b in zip(part, (cells[0], cells[1], cells[0], cells[1]), strict=True))
            logits = torch.from_numpy(paste(logits[..., CELL * r0:CELL * r1, CELL * c0:CELL * c1].numpy(), part))
        return logits, iou


def _np(t: torch.Tensor | None):
    return None if t is None else t.detach().numpy()


class GraphEngine(Engine):
    """An Engine over exported graphs (``medseg.engine.graphs.Graphs``): torch tensors in and out.

    The exported decoder holds the prompt encoder, so prompts go to the graphs as they are given.

    Args:
        model: the network the graphs were exported from.
        graphs: the runner of its exported encoder and decoder.
    """

    def __init__(self, model: PromptableSAM, graphs) -> None:
        super().__init__(model)
        self.graphs = graphs

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.graphs.encode(_np(images)))

    def open_lanes(self) -> int:
        return self.graphs.open_lanes()

    def encode_lane(self, images: torch.Tensor, tag: object = None) -> torch.Tensor:
        return torch.from_numpy(self.graphs.encode_lane(_np(images), tag))

    def stop_lanes(self, tags: list) -> None:
        self.graphs.stop_lanes(tags)

    @torch.no_grad()
    def decode(self, embeddings: torch.Tensor, points: Points | None = None, boxes: torch.Tensor | None = None,
               masks: torch.Tensor | None = None, multimask: bool = False,
               window: tuple[int, int, int, int] | None = None,
               crop: tuple[int, int, int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        pts = None if points is None else (_np(points[0]), _np(points[1]))
        logits, iou = self.graphs.decode(_np(embeddings), pts, _np(boxes), _np(masks), multimask, window, crop)
        return torch.from_numpy(logits), torch.from_numpy(iou)
