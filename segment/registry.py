"""Registry of SAM architectures: Meta's ViT-B/L/H and small configurations of the same classes.

Every model is built from ``segment_anything.modeling`` classes, so a Meta SAM ``.pth``, a
micro-sam/DendriteSAM export and our own checkpoints all load into the same network type. The
tiny configurations exist for tests (random weights) and for the shipped default model (trained
here with ``dendrosam train-sam``). Imitates segment-anything's ``sam_model_registry``: a dict from
name to a frozen description, and one builder.

``zoom_margin``: when set, inference and training work on one crop per prompt box: the box,
enlarged by this fraction of its size on each side, is resized to ``img_size`` so that every
object is seen at the same scale (small EM cross-sections become large). ``None`` = classic SAM:
one embedding per image tile, all prompts decoded against it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["SamArch", "SAM_ARCHS", "get_arch", "build_sam"]


@dataclass(frozen=True)
class SamArch:
    """Hyper-parameters that define a SAM network (all ``segment_anything`` classes).

    Parameters
    ----------
    name : str
        Registry name (``vit_b``, ``vit_l``, ``vit_h``, ``tiny``, ...).
    embed_dim, depth, num_heads : int
        Image-encoder ViT width, number of blocks and attention heads.
    global_attn_indexes : tuple of int
        Blocks with global (not windowed) attention.
    img_size : int
        Side of the square encoder input in pixels (1024 for Meta's models).
    patch_size : int
        ViT patch size; the embedding grid is ``img_size // patch_size``.
    window_size : int
        Windowed-attention size in patches.
    prompt_embed_dim : int
        Width of prompt embeddings, the neck output and the mask decoder.
    decoder_depth, decoder_mlp_dim, decoder_heads : int
        Two-way transformer of the mask decoder.
    zoom_margin : float or None
        See the module docstring.
    """

    name: str
    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    img_size: int = 1024
    patch_size: int = 16
    window_size: int = 14
    prompt_embed_dim: int = 256
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8
    zoom_margin: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def embedding_size(self) -> int:
        """Side of the image-embedding grid."""
        return self.img_size // self.patch_size

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form stored inside our checkpoints."""
        d = asdict(self)
        d["global_attn_indexes"] = list(self.global_attn_indexes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SamArch":
        """Inverse of :meth:`to_dict` (unknown keys are rejected by the dataclass)."""
        d = dict(d)
        d["global_attn_indexes"] = tuple(d.get("global_attn_indexes", ()))
        return cls(**d)


SAM_ARCHS: dict[str, SamArch] = {
    "vit_b": SamArch("vit_b", 768, 12, 12, (2, 5, 8, 11)),
    "vit_l": SamArch("vit_l", 1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": SamArch("vit_h", 1280, 32, 16, (7, 15, 23, 31)),
    # Same classes, small: unit tests (random weights, ~3 M parameters, 0.02 s per embedding).
    "tiny": SamArch(
        "tiny", 96, 2, 4, (1,), img_size=256, window_size=8,
        prompt_embed_dim=128, decoder_mlp_dim=512, decoder_heads=4,
    ),
    # The shipped default's family: one 128 px zoomed crop per prompt box, 8 px patches.
    "tiny_zoom": SamArch(
        "tiny_zoom", 128, 4, 4, (1, 3), img_size=128, patch_size=8, window_size=8,
        prompt_embed_dim=128, decoder_mlp_dim=512, decoder_heads=4, zoom_margin=0.25,
    ),
}


def get_arch(model_type: str | SamArch) -> SamArch:
    """Return the architecture for a registry name (or pass an ``SamArch`` through)."""
    from dendrosam.errors import CheckpointError

    if isinstance(model_type, SamArch):
        return model_type
    try:
        return SAM_ARCHS[model_type]
    except KeyError:
        known = ", ".join(sorted(SAM_ARCHS))
        raise CheckpointError(f"unknown SAM model type {model_type!r}; known: {known}") from None


def build_sam(model_type: str | SamArch = "tiny", seed: int | None = 0):
    """Build an (untrained) ``segment_anything.modeling.Sam`` of the given architecture.

    Parameters
    ----------
    model_type : str or SamArch
        Registry name or an explicit architecture.
    seed : int or None
        Seed for the random initialisation (``None`` leaves the global RNG alone).

    Returns
    -------
    segment_anything.modeling.Sam
        In eval mode, on the CPU.
    """
    from functools import partial

    import torch
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    arch = get_arch(model_type)
    if seed is not None:
        torch.manual_seed(seed)
    grid = arch.embedding_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=arch.depth,
            embed_dim=arch.embed_dim,
            img_size=arch.img_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=arch.num_heads,
            patch_size=arch.patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=arch.global_attn_indexes,
            window_size=arch.window_size,
            out_chans=arch.prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=arch.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(arch.img_size, arch.img_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=arch.decoder_depth,
                embedding_dim=arch.prompt_embed_dim,
                mlp_dim=arch.decoder_mlp_dim,
                num_heads=arch.decoder_heads,
            ),
            transformer_dim=arch.prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    sam.eval()
    return sam
