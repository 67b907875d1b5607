"""Flow matching: a bimodal action distribution is sampled as two modes, not averaged."""
from __future__ import annotations

import numpy as np
import torch

from .toy_policies import batch_for, sample, toy_embodiment, toy_policy, train


def test_learns_both_modes_of_a_two_mode_distribution() -> None:
    """From one observation the demonstrations go to +1 or to -1 with equal probability."""
    policy = toy_policy([toy_embodiment("toy", joints=1)], max_prefix=0)

    def make_batch(generator: torch.Generator) -> dict:
        signs = torch.randint(0, 2, (32, 1, 1), generator=generator).float() * 2 - 1
        return batch_for(policy, ["toy"] * 32, signs.expand(32, 8, 1).clone())

    losses = train(policy, make_batch, steps=250)
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    chunks = sample(policy, batch_for(policy, ["toy"] * 200, torch.zeros(200, 8, 1)), seed=1)[..., 0]
    means = chunks.mean(axis=1)
    assert (means > 0.5).mean() > 0.25 and (means < -0.5).mean() > 0.25, np.histogram(means, bins=8)
    assert (np.abs(means) < 0.3).mean() < 0.15, "samples collapse to the average of the modes"


def test_seeded_sampling_is_reproducible() -> None:
    policy = toy_policy([toy_embodiment("toy", joints=2)])
    batch = batch_for(policy, ["toy"] * 3, torch.zeros(3, 8, 2))
    first, again, other = sample(policy, batch, seed=7), sample(policy, batch, seed=7), sample(policy, batch, seed=8)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3
