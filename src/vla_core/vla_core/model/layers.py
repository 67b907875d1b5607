"""Transformer building blocks shared by the encoders and the action expert."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention with plain Linear projections (so LoRA can wrap them by name).

    `mask` is boolean, True where a query may attend to a key; shape broadcastable to
    (B, heads, queries, keys). `key_value`: the context's keys and values from `key_value()`,
    computed once when the context stays fixed over many calls (the observation over the Euler
    steps of one chunk); without it they are projected from `context` here.
    """

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(context_dim or dim, dim)
        self.v = nn.Linear(context_dim or dim, dim)
        self.out = nn.Linear(dim, dim)

    def key_value(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of `context` (B, N, C), each (B, heads, N, dim / heads)."""
        return self._split_heads(self.k(context)), self._split_heads(self.v(context))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                key_value: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        keys, values = key_value if key_value is not None else self.key_value(x if context is None else context)
        attended = F.scaled_dot_product_attention(self._split_heads(self.q(x)), keys, values, attn_mask=mask)
        batch, queries, dim = x.shape
        return self.out(attended.transpose(1, 2).reshape(batch, queries, dim))

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = t.shape
        return t.view(batch, tokens, self.heads, dim // self.heads).transpose(1, 2)


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
