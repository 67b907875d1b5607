"""The contract between observation encoders and the action expert.

Any vision-language backbone (the built-in one, or a Hugging Face model loaded from a local
directory) turns the main camera view and the instruction into a token sequence that the
action expert attends to. Keeping this contract small is what lets backbones be swapped.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EncodedTokens:
    """Tokens for the action expert to attend to.

    tokens: (B, N, D) float features.
    valid: (B, N) bool, True where a token is real (False = padding the expert must ignore).
    """

    tokens: torch.Tensor
    valid: torch.Tensor

    def __post_init__(self) -> None:
        if self.tokens.dim() != 3 or self.valid.shape != self.tokens.shape[:2]:
            raise ValueError(
                f"EncodedTokens expects tokens (B, N, D) and valid (B, N); got "
                f"{tuple(self.tokens.shape)} and {tuple(self.valid.shape)}"
            )

    @staticmethod
    def concat(parts: Sequence[EncodedTokens]) -> EncodedTokens:
        return EncodedTokens(torch.cat([p.tokens for p in parts], dim=1), torch.cat([p.valid for p in parts], dim=1))


class VisionLanguageEncoder(nn.Module):
    """Main view + instruction -> tokens. Subclasses set `output_dim` (D of their tokens)."""

    output_dim: int

    def forward(self, images: torch.Tensor, texts: Sequence[str]) -> EncodedTokens:
        """images: (B, 3, H, W) float in [0, 1], any H and W; texts: B instructions (already
        wrapped in the embodiment's text prompt by the caller)."""
        raise NotImplementedError
