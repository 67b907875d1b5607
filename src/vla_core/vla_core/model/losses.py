"""The masked flow-matching loss over the unified action tensor (Qwen-VLA eq. 1-2).

Every sample is an H x K_max tensor with a validity mask: padded channels (a robot with fewer
action dimensions), padded steps (an episode's end) and committed-prefix steps carry no loss.
The squared error is averaged per channel over its valid entries (all samples and steps of the
batch), then over the channels that have any valid entry, so a robot with many channels does
not outweigh one with few, and a channel's weight does not depend on how many steps it has.
"""
from __future__ import annotations

import torch


def masked_flow_loss(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """predicted, target: (B, H, K); mask: (B, H, K) bool, True where the entry counts."""
    if predicted.shape != target.shape or predicted.shape != mask.shape:
        raise ValueError(f"predicted {tuple(predicted.shape)}, target {tuple(target.shape)} and mask "
                         f"{tuple(mask.shape)} must have the same shape")
    weights = mask.to(predicted.dtype)
    squared = (predicted - target).pow(2) * weights
    count = weights.sum(dim=(0, 1))  # valid entries per channel
    active = count > 0
    if not active.any():
        raise ValueError("the loss mask has no valid entry: nothing to learn from this batch")
    per_channel = squared.sum(dim=(0, 1))[active] / count[active]
    return per_channel.mean()
