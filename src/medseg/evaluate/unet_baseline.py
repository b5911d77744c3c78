"""The from-scratch baseline SAM3D is compared with: MONAI's DynUNet (nnU-Net's architecture) on the
slice intensities alone, trained on the same cases, windows and loss for the same step time (wall-clock,
or CPU time: ``sam3d_trainer.step_clock``).

It sees the same preprocessed slices SAM3D's encoder sees (LiteMedSAM's resize to 256, min-max to
0..1), averaged down to the decoder's output grid (128 per side), and predicts on that grid, so both
models are scored through the same sliding window and resize back to the scan
(``medseg.predict.automatic.sliding_window``). Deep supervision at two extra stages with the same
weights 1, 1/2, 1/4.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from medseg.train.sam3d_loss import deep_supervision_loss


class GreyDynUNet(nn.Module):
    """DynUNet on (B, 1, D, 256, 256) encoder inputs pooled to 128; the decoder interface of Sam3DDecoder
    (``forward(embeddings, grey, deep)``; the embeddings are ignored)."""

    def __init__(self, num_classes: int, filters: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        from monai.networks.nets import DynUNet

        super().__init__()
        strides = [(1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)][:len(filters)]
        self.net = DynUNet(3, 1, num_classes, kernel_size=[(1, 3, 3)] + [(3, 3, 3)] * (len(filters) - 1),
                           strides=strides, upsample_kernel_size=strides[1:], filters=list(filters),
                           deep_supervision=True, deep_supr_num=2)
        self.num_classes = num_classes

    def forward(self, embeddings, grey: torch.Tensor, deep: bool = False):
        x = F.avg_pool3d(grey.float(), (1, 2, 2))
        pad = (-x.shape[2]) % 4  # two strides of 2 in z
        if pad:
            x = F.pad(x, (0, 0, 0, 0, 0, pad))
        out = self.net(x)
        if out.ndim == 6:  # training: (B, 1 + deep_supr_num, K, D, H, W), all at full size
            full = out[:, 0]
            if not deep:
                return full[:, :, :full.shape[2] - pad]
            return [out[:, i, :, :out.shape[3] - pad] for i in range(out.shape[1])]  # MONAI upsampled them
        return out[:, :, :out.shape[2] - pad]


def train_baseline(prepared, num_classes: int, cfg, seconds: float, seed: int = 0) -> tuple[GreyDynUNet, int, float]:
    """Train for ``seconds`` of step time (the clock of ``cfg``: ``sam3d_trainer.step_clock``) on the same
    windows as SAM3D (``sam3d_trainer.batch``).

    Returns:
        (model, steps, seconds trained).
    """
    from medseg.train.sam3d_trainer import batch, poly, step_clock

    clock = step_clock(cfg)
    torch.manual_seed(seed)
    model = GreyDynUNet(num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(seed)
    spent, steps = 0.0, 0
    while spent < seconds:
        t0 = clock()
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * poly(spent / seconds)
        emb, grey, labels = batch(prepared, cfg, rng)
        model.train()
        loss = deep_supervision_loss(model(None, grey, deep=True), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps += 1
        spent += clock() - t0
    return model.eval(), steps, spent
