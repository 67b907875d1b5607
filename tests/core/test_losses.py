"""The masked flow-matching loss and the gripper BCE: hand computations, zero gradient where the
mask is off, and a gripper head that learns a binary gripper."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vla_core.model.losses import gripper_bce_loss, masked_flow_loss
from vla_core.normalization import EmbodimentNormalizers, Normalizer

from .toy_policies import batch_for, sample, toy_embodiment, toy_policy, train


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


def test_gripper_bce_matches_a_hand_computation_and_skips_unmasked_entries() -> None:
    logits = torch.tensor([[[0.0, 2.0, 5.0], [1.0, -1.0, 5.0]]], requires_grad=True)  # B=1, H=2, K=3
    target = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])
    mask = torch.tensor([[[True, True, False], [False, True, False]]])
    channel0 = math.log(2.0)  # -log sigmoid(0)
    channel1 = (math.log1p(math.exp(2.0)) + math.log1p(math.exp(-1.0))) / 2  # -log(1 - sigmoid(x)), two steps
    loss = gripper_bce_loss(logits, target, mask)
    assert loss.item() == pytest.approx((channel0 + channel1) / 2, rel=1e-6)
    loss.backward()
    assert torch.all(logits.grad[~mask] == 0) and torch.all(logits.grad[mask] != 0)
    empty = gripper_bce_loss(logits, target, torch.zeros_like(mask))
    assert empty.item() == 0.0 and empty.requires_grad


def _gripper_policy(weight: float):
    spec = toy_embodiment("gripper_arm", joints=2, gripper=True)
    stats = EmbodimentNormalizers(Normalizer("mean_std", np.zeros(3), np.ones(3), np.array([False, False, True])),
                                  Normalizer("mean_std", np.zeros(3), np.ones(3), np.zeros(3, bool)))
    policy = toy_policy([], gripper_bce_weight=weight)
    policy.add_embodiment(spec, stats)
    return policy


def test_the_gripper_head_learns_a_binary_gripper_from_the_image() -> None:
    """Bright scene: gripper closed (1); dark scene: open (0). Joints are noise the BCE must not see."""
    policy = _gripper_policy(weight=1.0)
    assert policy.gripper_mask(["gripper_arm"]).tolist() == [[False, False, True, False]]

    def make_batch(generator: torch.Generator) -> dict:
        closed = torch.randint(0, 2, (16,), generator=generator).float()
        images = closed.view(16, 1, 1, 1, 1).expand(16, 1, 3, 16, 16).clone()
        actions = torch.cat([0.3 * torch.randn(16, 8, 2, generator=generator), closed.view(16, 1, 1).expand(16, 8, 1)],
                            dim=-1)
        return batch_for(policy, ["gripper_arm"] * 16, actions, images=images)

    losses = policy(make_batch(torch.Generator().manual_seed(0)), generator=torch.Generator().manual_seed(0))
    assert set(losses) == {"loss", "flow_loss", "gripper_loss"}
    torch.testing.assert_close(losses["loss"], losses["flow_loss"] + losses["gripper_loss"])
    train(policy, make_batch, steps=120)
    for brightness, closed in ((1.0, True), (0.0, False)):
        images = torch.full((8, 1, 3, 16, 16), brightness)
        chunks = sample(policy, batch_for(policy, ["gripper_arm"] * 8, torch.zeros(8, 8, 3), images=images), seed=0)
        gripper = chunks[..., 2]
        assert np.all((gripper >= 0) & (gripper <= 1)), "gripper outputs are sigmoid probabilities"
        assert np.all((gripper > 0.5) == closed), f"brightness {brightness}: gripper {gripper.round(2)}"


def test_gripper_channels_without_passthrough_statistics_get_no_bce() -> None:
    policy = toy_policy([toy_embodiment("normalised_gripper", gripper=True)], gripper_bce_weight=1.0)
    assert not policy.gripper_mask(["normalised_gripper"]).any()  # identity stats do not pass through
    losses = policy(batch_for(policy, ["normalised_gripper"] * 2, torch.ones(2, 8, 3)))
    assert losses["gripper_loss"].item() == 0.0
