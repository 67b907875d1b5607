"""Prefix conditioning (Xiaomi-Robotics-0): a committed prefix makes the new chunk continue it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_core.model.batching import Observation
from vla_core.normalization import EmbodimentNormalizers, Normalizer

from .toy_policies import HORIZON, batch_for, sample, toy_embodiment, toy_policy, train

SLOPE = 0.1  # per step


def ramps(size: int, generator: torch.Generator) -> torch.Tensor:
    """Straight lines with a random offset the observation does not reveal."""
    offset = torch.rand(size, 1, 1, generator=generator) * 1.6 - 0.8
    steps = torch.arange(HORIZON).view(1, HORIZON, 1) * SLOPE
    return offset + steps


def test_prefix_shrinks_the_boundary_jump_at_least_fivefold_and_is_reproduced() -> None:
    policy = toy_policy([toy_embodiment("toy", joints=1)], max_prefix=4, lambda_width=2, hidden_size=48)
    train(policy, lambda g: batch_for(policy, ["toy"] * 32, ramps(32, g)), steps=500)

    truth = ramps(64, torch.Generator().manual_seed(99))  # the chunk being executed
    d = 3
    prefix = torch.zeros(64, HORIZON, policy.config.max_action_dim)
    prefix[:, :d, :1] = truth[:, :d]
    lengths = torch.full((64,), d)
    batch = batch_for(policy, ["toy"] * 64, torch.zeros(64, HORIZON, 1))
    with_prefix = sample(policy, batch, seed=5, prefix=prefix, prefix_length=lengths)[..., 0]
    without = sample(policy, batch, seed=5)[..., 0]

    committed_last = truth[:, d - 1, 0].numpy()
    jump_with = np.abs(with_prefix[:, d] - committed_last - SLOPE).mean()
    jump_without = np.abs(without[:, d] - committed_last - SLOPE).mean()
    assert jump_without >= 5 * jump_with, f"jump with prefix {jump_with:.3f}, without {jump_without:.3f}"
    np.testing.assert_array_equal(with_prefix[:, :d], truth[:, :d, 0].numpy())


def test_the_lambda_mask_lets_only_early_steps_see_the_prefix() -> None:
    policy = toy_policy([toy_embodiment("toy")], max_prefix=4, lambda_width=2)
    mask = policy.expert.attention_mask(torch.tensor([3]))[0, 0]
    head = policy.config.num_prompt_tokens + 1  # prompt + sink
    steps = mask[head:, head:]
    prefix_columns = steps[:, :3]
    assert prefix_columns[:3].all()  # prefix steps see each other
    assert prefix_columns[3:5].all() and not prefix_columns[5:].any()  # Lambda: 2 generated steps see it
    assert not steps[:3, 3:].any()  # the clean prefix does not read noisy steps
    assert mask[head:, :head].all()  # every step sees the prompt and the sink


def test_predict_chunk_returns_the_committed_prefix_exactly_in_the_action_space() -> None:
    policy = toy_policy([toy_embodiment("toy")], max_prefix=4)
    rng = np.random.default_rng(0)
    actions = Normalizer.fit(rng.normal(0, 1, (200, 2)), "quantile")  # clamps beyond the 1st/99th percentile
    policy.normalizers["toy"] = EmbodimentNormalizers(actions, EmbodimentNormalizers.identity(2, 2).state)
    observation = Observation(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), np.zeros(2))
    prefix = np.array([[0.1, 0.2], [5.0, -7.0], [0.3, 0.1]])  # the second row lies far outside the statistics
    chunk = policy.predict_chunk(observation, "push", "toy", prefix=prefix, seed=0)
    np.testing.assert_array_equal(chunk.actions[:3], prefix)
    assert chunk.prefix_length == 3 and np.all(np.isfinite(chunk.actions))
    longer = policy.predict_chunk(observation, "push", "toy", prefix=np.tile(prefix, (2, 1)), seed=0)
    assert longer.prefix_length == 4  # d_max
    np.testing.assert_array_equal(longer.actions[:4], np.tile(prefix, (2, 1))[:4])
    with pytest.raises(ValueError, match=r"committed prefix 0 must be a finite \(d, 2\) array in the action space "
                                         r"of toy, got shape \(3, 3\)"):
        policy.predict_chunk(observation, "push", "toy", prefix=np.zeros((3, 3)))


def test_a_random_training_prefix_leaves_a_step_to_learn_at_an_episode_end() -> None:
    policy = toy_policy([toy_embodiment("toy")], max_prefix=4)
    batch = batch_for(policy, ["toy"], torch.randn(1, HORIZON, 2))
    batch["action_mask"][:, 2:] = False  # the episode ends two steps into this chunk
    for seed in range(8):
        loss = policy(batch, generator=torch.Generator().manual_seed(seed))["loss"]
        assert torch.isfinite(loss) and loss > 0
