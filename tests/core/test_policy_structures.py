"""RoboVLMs' policy structures: one-step (current frame) and a history of k frames."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vla_core.model.batching import Observation
from vla_core.model.configuration import PolicyConfig

from .toy_policies import batch_for, tiny_config, toy_embodiment, toy_policy


def test_history_structure_reads_every_frame() -> None:
    policy = toy_policy([toy_embodiment("toy")], structure="history", history_length=3)
    images = torch.rand(2, 3, 3, 16, 16)
    batch = batch_for(policy, ["toy"] * 2, torch.zeros(2, 8, 2), images=images)
    one_frame = batch_for(policy, ["toy"] * 2, torch.zeros(2, 8, 2), images=images[:, :1])
    tokens_per_frame = policy.encode(one_frame).tokens.shape[1]
    encoded = policy.encode(batch)
    wrist_tokens = 1  # one 16 px wrist view -> one token
    assert encoded.tokens.shape[1] == 3 * (tokens_per_frame - wrist_tokens) + wrist_tokens
    # the oldest frame matters: changing it changes the chunk
    changed = images.clone()
    changed[:, 0] = 1.0 - changed[:, 0]
    other = dict(batch, main_images=changed)
    with torch.inference_mode():
        a = policy.sample_actions(batch, generator=torch.Generator().manual_seed(0))
        b = policy.sample_actions(other, generator=torch.Generator().manual_seed(0))
    assert (a - b).abs().max() > 1e-5


def test_history_policy_needs_k_frames_per_observation() -> None:
    policy = toy_policy([toy_embodiment("toy")], structure="history", history_length=2)
    frames = np.random.default_rng(0).integers(0, 256, (3, 20, 20, 3), dtype=np.uint8)
    chunk = policy.predict_chunk(Observation(frames[2], np.zeros(2), history=[frames[1]]), "wave", "toy", seed=0)
    assert chunk.actions.shape == (8, 2)
    # a longer history: the newest k - 1 past views are used
    longer = policy.predict_chunk(Observation(frames[2], np.zeros(2), history=[frames[0], frames[1]]), "wave", "toy",
                                  seed=0)
    np.testing.assert_array_equal(longer.actions, chunk.actions)
    with pytest.raises(ValueError, match=r"reads 2 main views: it needs 1 past views in Observation.history, got 0"):
        policy.predict_chunk(Observation(frames[2], np.zeros(2)), "wave", "toy")


@pytest.mark.parametrize("values, message", [
    ({"structure": "tree"}, "structure must be one of"),
    ({"history_length": 2}, "history_length must be 1 for structure 'one_step'"),
    ({"hidden_size": 30, "num_heads": 4}, "hidden_size 30 must be divisible by num_heads 4"),
    ({"max_prefix": 8}, "max_prefix must be in 0..horizon-1=7"),
    ({"image_size": 40}, "image_size must be a positive multiple of 16, got 40"),
    ({"hidden_size": "32"}, "hidden_size must be of type int, got '32'"),
    ({"adaln": 1}, "adaln must be of type bool, got 1"),
    ({"tau_beta": (1.5, 0.0)}, r"tau_beta must be two positive numbers \(alpha, beta\), got \[1.5, 0.0\]"),
])
def test_bad_configurations_are_named(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_config(**values)


def test_config_round_trips_through_a_dict_and_names_unknown_fields() -> None:
    config = tiny_config(structure="history", history_length=3, tau_beta=(2.0, 1.0))
    assert PolicyConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match=r"unknown PolicyConfig field\(s\) \['hiden_size'\]"):
        PolicyConfig.from_dict({"hiden_size": 64})
