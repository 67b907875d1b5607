"""RoboVLMs' policy structures: one-step (current frame) and a history of k frames."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_core.model.batching import Observation

from .toy_policies import batch_for, tiny_config, toy_embodiment, toy_policy


def test_history_structure_reads_every_frame() -> None:
    policy = toy_policy([toy_embodiment("toy")], structure="history", history_length=3)
    images = torch.rand(2, 3, 3, 16, 16)
    batch = batch_for(policy, ["toy"] * 2, torch.zeros(2, 8, 2), images=images)
    tokens_per_frame = policy.encode(batch_for(policy, ["toy"] * 2, torch.zeros(2, 8, 2), images=images[:, :1])).tokens.shape[1]
    encoded = policy.encode(batch)
    wrist_tokens = 1  # one 16 px wrist view -> one token
    assert encoded.tokens.shape[1] == 3 * (tokens_per_frame - wrist_tokens) + wrist_tokens
    # the oldest frame matters: changing it changes the chunk
    changed = images.clone()
    changed[:, 0] = 1.0 - changed[:, 0]
    other = dict(batch, main_images=changed)
    with torch.inference_mode():
        a = policy.sample(batch, generator=torch.Generator().manual_seed(0))
        b = policy.sample(other, generator=torch.Generator().manual_seed(0))
    assert (a - b).abs().max() > 1e-5


def test_history_policy_needs_k_frames_per_observation() -> None:
    policy = toy_policy([toy_embodiment("toy")], structure="history", history_length=2)
    frames = np.zeros((2, 20, 20, 3), np.uint8)
    chunk = policy.predict_chunk(Observation(frames, np.zeros(2)), "wave", "toy", seed=0)
    assert chunk.actions.shape == (8, 2)
    with pytest.raises(ValueError, match="main_image has 1 frames, the policy's structure needs 2"):
        policy.predict_chunk(Observation(frames[0], np.zeros(2)), "wave", "toy")


@pytest.mark.parametrize("values, message", [
    ({"structure": "tree"}, "structure must be one of"),
    ({"history_length": 2}, "history_length must be 1 for structure 'one_step'"),
    ({"hidden_size": 30, "num_heads": 4}, "hidden_size 30 must be divisible by num_heads 4"),
    ({"max_prefix": 8}, "max_prefix must be in 0..horizon-1=7"),
])
def test_bad_configurations_are_named(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_config(**values)
