"""Instructed keypoints: where in the main view the instruction points, as K image positions.

Behaviour cloning alone did not make this project's policies read their main view (the arm's
state and the average motion explain most of a chunk, see the README's Status). A spatial
soft-argmax read-out (Levine et al.'s deep spatial autoencoders, the keypoints of
Transporter-style policies) turns the view into a handful of coordinates that the action expert
receives beside the joint state, where a few numbers cannot be drowned by hundreds of tokens;
keypoint 0 can be supervised to the named object's image position (vla_core.training.keypoint_set).

Each keypoint is the expectation of the cell positions of the stem's stride-8 feature map under
a softmax heat map. The instruction modulates the features first (FiLM from an attention pool
over its token states, which keep the colour words that pooled sentence vectors blur), so the
same view yields different keypoints for "red" and "blue". Heat maps are standardised over the
image and sharpened by a learned per-keypoint factor: raw maps of an untrained head are nearly
flat, and a flat map's soft-argmax sits at the centre whatever the image.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from vla_core.model.interfaces import EncodedTokens

INITIAL_SHARPNESS = 4.0  # standardised heat maps times this before the softmax


def cell_centres(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """x and y (each (height * width,)) of the cell centres in [-1, 1]: -1 the left (top) edge of
    the image, +1 the right (bottom) edge, as `TabletopScene.image_position` measures them."""
    ys = (torch.arange(height, device=device) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=device) + 0.5) / width * 2 - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return grid_x.flatten(), grid_y.flatten()


class InstructedKeypoints(nn.Module):
    """(B, C, h, w) features + instruction tokens -> (B, K, 2) image positions (x, y) in [-1, 1]."""

    def __init__(self, channels: int, text_dim: int, count: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(text_dim) / math.sqrt(text_dim))
        self.film = nn.Linear(text_dim, 2 * channels)
        nn.init.zeros_(self.film.weight)  # starts as the identity modulation
        nn.init.zeros_(self.film.bias)
        self.mix = nn.Conv2d(channels, channels, 1)
        self.heat = nn.Conv2d(channels, count, 1)
        self.log_sharpness = nn.Parameter(torch.full((count,), math.log(INITIAL_SHARPNESS)))

    def forward(self, features: torch.Tensor, text: EncodedTokens) -> torch.Tensor:
        scores = (text.tokens @ self.query.to(text.tokens.dtype)) / math.sqrt(text.tokens.shape[-1])
        weights = scores.masked_fill(~text.valid, float("-inf")).softmax(dim=-1)
        pooled = (weights[..., None] * text.tokens).sum(dim=1)
        scale, shift = self.film(pooled)[..., None, None].chunk(2, dim=1)
        modulated = nn.functional.gelu(self.mix(features * (1 + scale) + shift))
        heat = self.heat(modulated).flatten(2).float()  # (B, K, h * w)
        heat = (heat - heat.mean(dim=-1, keepdim=True)) / (heat.std(dim=-1, keepdim=True) + 1e-5)
        probabilities = (heat * self.log_sharpness.exp()[:, None]).softmax(dim=-1)
        xs, ys = cell_centres(features.shape[-2], features.shape[-1], features.device)
        return torch.stack([probabilities @ xs, probabilities @ ys], dim=-1).to(features.dtype)
