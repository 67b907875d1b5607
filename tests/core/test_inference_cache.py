"""Observation K/V caching: a chunk projects the observation once, and its chunks equal those of
the plain path that recomputes everything at every Euler step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_core.model.batching import Observation, collate_observations
from vla_core.model.flow_matching import euler_integrate
from vla_core.model.interfaces import EncodedTokens

from .toy_policies import HORIZON, toy_embodiment, toy_policy

RNG = np.random.default_rng(3)
OBSERVATION = Observation(main_image=RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8), state=np.array([0.3, -0.1]))
TOLERANCE = 1e-5


def random_observation(batch: int, tokens: int, dim: int) -> EncodedTokens:
    valid = torch.ones(batch, tokens, dtype=torch.bool)
    valid[0, -3:] = False  # padding, as a shorter instruction leaves
    return EncodedTokens(torch.randn(batch, tokens, dim), valid)


def test_one_prepared_context_gives_the_fresh_velocity_at_every_step() -> None:
    policy = toy_policy([toy_embodiment("toy", gripper=True)], gripper_bce_weight=0.5).eval()
    expert, config = policy.expert, policy.config
    observation = random_observation(2, 11, policy.vision_language.output_dim)
    prefix_length, state = torch.tensor([0, 3]), torch.randn(2, config.max_state_dim)
    with torch.no_grad():
        context = expert.prepare_context(observation, prefix_length, ["toy", "toy"])
        for tau in (0.0, 0.4, 0.9):  # the steps of one chunk: new actions and times, the same context
            actions = torch.randn(2, HORIZON, config.max_action_dim)
            taus = torch.full((2,), tau)
            cached = expert.velocity(actions, taus, state, context)
            fresh = expert(actions, taus, state, prefix_length, ["toy", "toy"], observation)
            torch.testing.assert_close(cached.velocity, fresh.velocity, rtol=0, atol=TOLERANCE)
            torch.testing.assert_close(cached.gripper_logits, fresh.gripper_logits, rtol=0, atol=TOLERANCE)


def test_a_chunk_projects_the_observation_once_not_once_per_step() -> None:
    policy = toy_policy([toy_embodiment("toy")], flow_steps=5)
    calls = {"observation_k": 0, "observation_v": 0, "self_k": 0}
    for block in policy.expert.blocks:
        for name, module in (("observation_k", block.cross_attention.k), ("observation_v", block.cross_attention.v),
                             ("self_k", block.self_attention.k)):
            module.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    policy.predict_chunk(OBSERVATION, "push the block", "toy", seed=0)
    depth = policy.config.depth
    assert calls == {"observation_k": depth, "observation_v": depth, "self_k": 5 * depth}


def test_predict_chunk_equals_the_uncached_euler_loop_with_the_same_seed() -> None:
    policy = toy_policy([toy_embodiment("toy")], flow_steps=6).eval()
    spec, stats = policy.embodiment("toy"), policy.normalizers["toy"]  # identity statistics
    committed = np.array([[0.2, -0.4], [0.25, -0.35]])
    chunk = policy.predict_chunk(OBSERVATION, "push the block", "toy", prefix=committed, seed=7)

    with torch.inference_mode():
        batch = collate_observations(policy.config, spec, stats, [OBSERVATION], ["push the block"])
        encoded = policy.encode(batch)
        noise = torch.randn(1, HORIZON, policy.config.max_action_dim, generator=torch.Generator().manual_seed(7))
        prefix = torch.zeros_like(noise)
        prefix[0, :2, :2] = torch.from_numpy(committed).float()
        lengths = torch.tensor([2])
        reference = euler_integrate(
            lambda x, tau: policy.expert(x, tau, batch["state"], lengths, ["toy"], encoded).velocity,
            noise, policy.config.flow_steps, prefix, lengths)
    assert chunk.prefix_length == 2
    np.testing.assert_allclose(chunk.actions, reference[0, :, :2].double().numpy(), rtol=0, atol=TOLERANCE)
    assert np.abs(chunk.actions[2:]).max() > 0.01  # generated rows, not the zeros of a broken loop


def test_cuda_graphs_are_refused_on_a_cpu_policy() -> None:
    policy = toy_policy([toy_embodiment("toy")])
    with pytest.raises(ValueError, match=r"cuda_graphs needs the policy on a CUDA device, it is on cpu"):
        policy.optimize_for_inference(cuda_graphs=True)
