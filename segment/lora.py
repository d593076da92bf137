"""Low-rank adapters (LoRA) on the image encoder's attention ``qkv`` projections.

``qkv(x) = W x + b + (alpha / r) * B A x`` with ``A`` (r x in) random, ``B`` (out x r) zero, so an
adapted model starts identical to its base. :func:`merge_lora` folds the update into ``W`` and
restores plain ``nn.Linear`` layers, so exported checkpoints load into an unmodified SAM.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LoRALinear", "add_lora", "merge_lora"]


def _module_base():
    import torch

    return torch.nn.Module


class LoRALinear(_module_base()):  # type: ignore[misc]
    """A frozen ``nn.Linear`` plus a trainable rank-``r`` update.

    Parameters
    ----------
    base : torch.nn.Linear
        The layer to adapt (its weights are frozen).
    rank : int
        Rank ``r`` of the update.
    alpha : float
        Scale numerator: the update is multiplied by ``alpha / rank``.
    """

    def __init__(self, base: Any, rank: int = 4, alpha: float = 4.0) -> None:
        import math

        import torch

        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank, self.scale = int(rank), float(alpha) / rank
        self.lora_a = torch.nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = torch.nn.Parameter(torch.zeros(base.out_features, rank))
        torch.nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: Any) -> Any:  # noqa: D102
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

    def merged(self) -> Any:
        """A plain ``nn.Linear`` with the update folded into its weight."""
        import torch

        lin = torch.nn.Linear(self.base.in_features, self.base.out_features,
                              bias=self.base.bias is not None)
        with torch.no_grad():
            lin.weight.copy_(self.base.weight + self.scale * self.lora_b @ self.lora_a)
            if self.base.bias is not None:
                lin.bias.copy_(self.base.bias)
        return lin.to(self.base.weight.device)


def add_lora(sam: Any, rank: int = 4, alpha: float = 4.0) -> int:
    """Wrap every image-encoder block's ``attn.qkv`` in a :class:`LoRALinear`; return how many."""
    n = 0
    for block in sam.image_encoder.blocks:
        if not isinstance(block.attn.qkv, LoRALinear):
            block.attn.qkv = LoRALinear(block.attn.qkv, rank, alpha)
            n += 1
    return n


def merge_lora(sam: Any) -> int:
    """Fold every adapter back into a plain linear layer (in place); return how many."""
    n = 0
    for block in sam.image_encoder.blocks:
        if isinstance(block.attn.qkv, LoRALinear):
            block.attn.qkv = block.attn.qkv.merged()
            n += 1
    return n
