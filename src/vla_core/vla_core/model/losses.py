"""Losses over the unified action tensor (Qwen-VLA eq. 1-2), with X-VLA's optional gripper BCE.

Every sample is an H x K_max tensor with a validity mask: padded channels (a robot with fewer
action dimensions), padded steps (an episode's end) and committed-prefix steps carry no loss.
An element-wise loss is averaged per channel over its valid entries (all samples and steps of
the batch), then over the channels that have any valid entry, so a robot with many channels
does not outweigh one with few, and a channel's weight does not depend on how many steps it has.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_shapes(**tensors: torch.Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"{listed} must have the same shape")


def channel_averaged(elementwise: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid entries of each channel, then over channels with any valid entry.

    elementwise, mask: (B, H, K); masked-out entries get exactly zero gradient (they are
    multiplied by zero, not merely down-weighted).
    """
    weights = mask.to(elementwise.dtype)
    count = weights.sum(dim=(0, 1))  # valid entries per channel
    active = count > 0
    if not active.any():
        raise ValueError("the loss mask has no valid entry: nothing to learn from this batch")
    per_channel = (elementwise * weights).sum(dim=(0, 1))[active] / count[active]
    return per_channel.mean()


def masked_flow_loss(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Squared velocity error, channel-averaged. predicted, target: (B, H, K); mask: (B, H, K) bool."""
    _check_shapes(predicted=predicted, target=target, mask=mask)
    return channel_averaged((predicted - target).pow(2), mask)


def masked_l1_loss(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Absolute chunk error, channel-averaged: the regression head's loss (ACT, OpenVLA-OFT).
    Its minimiser is the per-entry median of the demonstrated rows, which an outlying
    demonstration pulls less than the mean a squared error fits. Shapes as `masked_flow_loss`."""
    _check_shapes(predicted=predicted, target=target, mask=mask)
    return channel_averaged((predicted - target).abs(), mask)


def gripper_bce_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """X-VLA's binary cross-entropy for gripper channels (0 open, 1 closed), channel-averaged.

    logits: (B, H, K) from the expert's gripper head; target: (B, H, K) with gripper channels
    0 or 1 (thresholded at 0.5); mask: True on valid steps of gripper channels only. Returns a
    zero that keeps the graph when the batch has no gripper entry (a robot without a gripper).
    """
    _check_shapes(logits=logits, target=target, mask=mask)
    if not mask.any():
        return logits.sum() * 0.0
    closed = (target > 0.5).to(logits.dtype)
    return channel_averaged(F.binary_cross_entropy_with_logits(logits, closed, reduction="none"), mask)
