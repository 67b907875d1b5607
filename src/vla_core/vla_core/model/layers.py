"""Transformer building blocks shared by the encoders and the action expert."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention with plain Linear projections (so LoRA can wrap them by name).

    `mask` is boolean, True where a query may attend to a key; shape broadcastable to
    (B, heads, queries, keys).
    """

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(context_dim or dim, dim)
        self.v = nn.Linear(context_dim or dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        batch, queries, dim = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, t.shape[1], self.heads, dim // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(context)), split(self.v(context)),
                                                  attn_mask=mask)
        return self.out(attended.transpose(1, 2).reshape(batch, queries, dim))


class FeedForward(nn.Module):
    def __init__(self, dim: int, ratio: float, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(F.gelu(self.fc1(x))))


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention + feed-forward, with residuals: queries read from a context."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(context_dim or dim)
        self.attention = Attention(dim, heads, context_dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_ratio)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_valid: torch.Tensor) -> torch.Tensor:
        mask = context_valid[:, None, None, :]
        x = x + self.attention(self.norm_q(x), self.norm_context(context), mask)
        return x + self.mlp(self.norm_mlp(x))


def sinusoidal_embedding(values: torch.Tensor, dim: int, max_period: float = 1000.0) -> torch.Tensor:
    """Sin/cos features of scalars in [0, 1] (flow time), (...,) -> (..., dim)."""
    half = dim // 2
    steps = torch.arange(half, device=values.device, dtype=torch.float32) / half
    frequencies = torch.exp(-math.log(max_period) * steps)
    angles = values.float()[..., None] * 1000.0 * frequencies
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
