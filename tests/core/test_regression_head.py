"""The regression head: one pass of the expert, L1 on the whole masked chunk (ACT, OpenVLA-OFT)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_core.model.policy import VLAPolicy

from .test_checkpoint import OBSERVATION
from .toy_policies import HORIZON, batch_for, sample, toy_embodiment, toy_policy, train


def regression_policy(**config) -> VLAPolicy:
    return toy_policy([toy_embodiment("toy", joints=2)], head="regression", **config)


def test_fits_a_deterministic_mapping_from_the_image() -> None:
    """Bright views go to +0.8 on joint 0 and dark ones to -0.8, joint 1 ramps along the chunk."""
    policy = regression_policy(max_prefix=0)
    ramp = torch.linspace(-0.5, 0.5, HORIZON)

    def targets(levels: torch.Tensor) -> torch.Tensor:
        chunk = torch.zeros(len(levels), HORIZON, 2)
        chunk[..., 0] = torch.where(levels > 0.5, 0.8, -0.8)[:, None]
        chunk[..., 1] = ramp
        return chunk

    def make_batch(generator: torch.Generator) -> dict:
        levels = torch.randint(0, 2, (16,), generator=generator).float() * 0.8 + 0.1
        images = levels.view(16, 1, 1, 1, 1).expand(16, 1, 3, 16, 16).clone()
        return batch_for(policy, ["toy"] * 16, targets(levels), images=images)

    losses = train(policy, make_batch, steps=100)
    assert np.mean(losses[-10:]) < 0.1 * np.mean(losses[:10])
    levels = torch.tensor([0.1, 0.9])
    batch = batch_for(policy, ["toy"] * 2, torch.zeros(2, HORIZON, 2),
                      images=levels.view(2, 1, 1, 1, 1).expand(2, 1, 3, 16, 16).clone())
    chunks = sample(policy, batch, seed=0)[..., :2]
    np.testing.assert_allclose(chunks, targets(levels).numpy(), atol=0.1)


def test_one_pass_is_deterministic_whatever_the_noise_seed() -> None:
    policy = regression_policy().eval()
    batch = batch_for(policy, ["toy"] * 2, torch.zeros(2, HORIZON, 2))
    np.testing.assert_array_equal(sample(policy, batch, seed=1), sample(policy, batch, seed=2))


def test_reproduces_the_committed_prefix_rows() -> None:
    policy = regression_policy(adaln=False).eval()  # an untrained AdaLN block gates its attention shut
    batch = batch_for(policy, ["toy"] * 2, torch.zeros(2, HORIZON, 2))
    prefix = torch.zeros(2, HORIZON, policy.config.max_action_dim)
    prefix[:, :3, :2] = torch.tensor([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2]])
    lengths = torch.tensor([3, 1])
    chunks = sample(policy, batch, seed=0, prefix=prefix, prefix_length=lengths)
    np.testing.assert_array_equal(chunks[0, :3], prefix[0, :3].numpy())
    np.testing.assert_array_equal(chunks[1, :1], prefix[1, :1].numpy())
    assert not np.allclose(chunks[1, 1:3], prefix[1, 1:3].numpy()), "rows past the prefix are generated"
    # and the generated rows read the prefix: a different committed prefix changes what follows
    moved = prefix.clone()
    moved[0, :3] += 0.5
    assert not np.allclose(sample(policy, batch, seed=0, prefix=moved, prefix_length=lengths)[0, 3:], chunks[0, 3:])


def test_padded_channels_and_prefix_rows_carry_no_loss() -> None:
    policy = regression_policy(adaln=False)  # attention open from the start, so prefix inputs reach the outputs

    def l1(batch: dict) -> torch.Tensor:
        return policy(batch, generator=torch.Generator().manual_seed(0))["l1_loss"]

    batch = batch_for(policy, ["toy"] * 4, torch.full((4, HORIZON, 2), 0.25))
    batch["prefix_length"] = torch.zeros(4, dtype=torch.long)
    changed = {**batch, "actions": batch["actions"].clone()}
    changed["actions"][..., 2:] = 50.0  # padded channels (the toy robot has 2 of K_max = 4)
    assert l1(changed) == l1(batch)
    batch["prefix_length"] = changed["prefix_length"] = torch.tensor([2, 0, 1, 3])
    changed["actions"] = batch["actions"].clone()
    changed["actions"][0, 1, :2] = 50.0  # a committed prefix row of sample 0: an input, not a target
    reference, after = l1(batch), l1(changed)
    assert after != reference and abs(after - reference) < 0.5
    changed["actions"][0, 2, :2] = 50.0  # a generated row is a target: 49.75 over 26 entries a channel
    assert l1(changed) > after + 1.5


def test_survives_save_and_load_bit_for_bit(tmp_path) -> None:
    policy = regression_policy()
    loaded = VLAPolicy.from_pretrained(policy.save_pretrained(tmp_path / "policy"))
    assert loaded.config.head == "regression"
    before = policy.predict_chunk(OBSERVATION, "push the block", "toy", seed=3)
    after = loaded.predict_chunk(OBSERVATION, "push the block", "toy", seed=4)
    np.testing.assert_array_equal(before.actions, after.actions)


def test_an_unknown_head_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="head must be one of"):
        toy_policy([toy_embodiment("toy")], head="diffusion")
