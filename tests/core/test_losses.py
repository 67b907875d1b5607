"""The masked flow-matching loss: a hand computation, and zero gradient where the mask is off."""
from __future__ import annotations

import pytest
import torch

from vla_core.model.losses import masked_flow_loss

from .toy_policies import batch_for, toy_embodiment, toy_policy


def test_matches_a_hand_computation() -> None:
    predicted = torch.tensor([[[1.0, 2.0, 9.0], [3.0, 0.0, 9.0]]])  # B=1, H=2, K=3
    target = torch.zeros_like(predicted)
    mask = torch.tensor([[[True, True, False], [True, False, False]]])
    # channel 0: (1 + 9) / 2 = 5; channel 1: 4 / 1 = 4; channel 2: inactive -> (5 + 4) / 2
    assert masked_flow_loss(predicted, target, mask).item() == pytest.approx(4.5)


def test_refuses_an_empty_mask_and_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="no valid entry"):
        masked_flow_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(1, 2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="must have the same shape"):
        masked_flow_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 2), torch.ones(1, 2, 3, dtype=torch.bool))


def test_padded_channels_and_prefix_steps_get_zero_gradient() -> None:
    policy = toy_policy([toy_embodiment("toy", joints=2)])
    batch = batch_for(policy, ["toy"] * 4, torch.randn(4, 8, 2))  # channels 2, 3 are padding
    batch["prefix_length"] = torch.full((4,), 3)
    outputs = {}
    policy.expert.head.register_forward_hook(lambda module, args, out: outputs.setdefault("velocity", out))
    policy.train()
    loss = policy(batch, generator=torch.Generator().manual_seed(0))["loss"]
    outputs["velocity"].retain_grad()
    loss.backward()
    gradient = outputs["velocity"].grad  # (B, H, K_max)
    assert torch.all(gradient[:, :, 2:] == 0), "padded channels received gradient"
    assert torch.all(gradient[:, :3] == 0), "committed prefix steps received gradient"
    assert torch.any(gradient[:, 3:, :2] != 0)
    head_grad = policy.expert.head.weight.grad
    assert torch.all(head_grad[2:] == 0) and torch.any(head_grad[:2] != 0)
