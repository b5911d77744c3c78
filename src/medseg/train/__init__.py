"""Fine-tuning of promptable models on the user's own data (MedSAM / SAM-Med2D recipes).

The pipeline: ``datasets`` (nnU-Net raw, CVPR24 npz, PNG pairs -> 2D model-space targets) ->
``prompts`` (simulated boxes, clicks, mask prompts) -> ``step`` (iterative prompting rounds, ``losses``) ->
``trainer`` (loop, validation, ``checkpoint``, ``history``) with ``distributed`` for DDP via torchrun.

Public entry point: ``medseg.train.trainer.train(TrainConfig(...))``.
"""

from __future__ import annotations

from medseg.train.config import MODES, PROMPT_KINDS, TrainConfig

__all__ = ["MODES", "PROMPT_KINDS", "TrainConfig"]
