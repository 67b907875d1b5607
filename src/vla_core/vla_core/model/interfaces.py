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
    keypoints: (B, K, 2) image positions the expert reads beside the state, or None
        (vla_core.model.keypoints).
    """

    tokens: torch.Tensor
    valid: torch.Tensor
    keypoints: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.tokens.dim() != 3 or self.valid.shape != self.tokens.shape[:2]:
            raise ValueError(
                f"EncodedTokens expects tokens (B, N, D) and valid (B, N); got "
                f"{tuple(self.tokens.shape)} and {tuple(self.valid.shape)}"
            )

    @staticmethod
    def concat(parts: Sequence[EncodedTokens]) -> EncodedTokens:
        """Tokens one after the other; the keypoints of the parts that have them, likewise."""
        keypoints = [p.keypoints for p in parts if p.keypoints is not None]
        return EncodedTokens(torch.cat([p.tokens for p in parts], dim=1), torch.cat([p.valid for p in parts], dim=1),
                             torch.cat(keypoints, dim=1) if keypoints else None)


class VisionLanguageEncoder(nn.Module):
    """Main view + instruction -> tokens. Subclasses set `output_dim` (D of their tokens)."""

    output_dim: int

    def forward(self, images: torch.Tensor, texts: Sequence[str]) -> EncodedTokens:
        """images: (B, 3, H, W) float in [0, 1], any H and W; texts: B instructions (already
        wrapped in the embodiment's text prompt by the caller)."""
        raise NotImplementedError

    def keypoints(self, images: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """(B, K, 2) instructed keypoints of the view in [-1, 1]; encoders without them refuse."""
        raise ValueError(f"{type(self).__name__} has no instructed keypoints (PolicyConfig.main_keypoints needs the "
                         f"builtin backbone)")

    def stem_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The text-free part of `forward`, cacheable per frame once frozen; encoders without a
        separate stem refuse (the feature cache needs the builtin backbone)."""
        raise ValueError(f"{type(self).__name__} has no separable image stem, so its features cannot be cached "
                         f"(the feature cache needs the builtin backbone)")

