"""Soft prompts: two embodiments with opposite action semantics, trained jointly, told apart by
their prompt alone (same images, same text)."""
from __future__ import annotations

import numpy as np
import torch

from .toy_policies import batch_for, sample, toy_embodiment, toy_policy, train

TARGET = {"left_handed": 0.8, "right_handed": -0.8}


def test_each_prompt_produces_its_embodiments_actions_and_swapping_changes_them() -> None:
    # same robot tag, so the text prompts are identical: only the soft prompt tells them apart
    specs = [toy_embodiment(name, joints=2, tag="a toy arm") for name in TARGET]
    policy = toy_policy(specs)

    def make_batch(generator: torch.Generator) -> dict:
        names = [list(TARGET)[i] for i in torch.randint(0, 2, (32,), generator=generator)]
        actions = torch.tensor([TARGET[n] for n in names]).view(32, 1, 1).expand(32, 8, 2).clone()
        return batch_for(policy, names, actions + 0.05 * torch.randn(32, 8, 2, generator=generator))

    train(policy, make_batch, steps=200)
    for name, target in TARGET.items():
        chunks = sample(policy, batch_for(policy, [name] * 16, torch.zeros(16, 8, 2)), seed=3)[..., :2]
        assert np.abs(chunks.mean() - target) < 0.2, f"{name}: mean action {chunks.mean():.2f}, wanted {target}"
    swapped = sample(policy, batch_for(policy, ["right_handed"] * 16, torch.zeros(16, 8, 2)), seed=3)[..., :2]
    original = sample(policy, batch_for(policy, ["left_handed"] * 16, torch.zeros(16, 8, 2)), seed=3)[..., :2]
    assert np.abs(swapped.mean() - original.mean()) > 1.0
