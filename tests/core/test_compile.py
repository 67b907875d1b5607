"""torch.compile of the per-step velocity: the same chunks as eager, on a CPU (inductor's C++ backend)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_core.model.batching import Observation

from .toy_policies import toy_embodiment, toy_policy

RNG = np.random.default_rng(5)
OBSERVATION = Observation(main_image=RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8), state=np.array([0.3, -0.1, 1.0]))
# inductor fuses and reorders fp32 reductions, so compiled and eager chunks differ by rounding only
TOLERANCE = 1e-4


@pytest.mark.slow  # compiling takes 20-60 s on two cores
def test_a_compiled_policy_predicts_the_eager_chunks() -> None:
    policy = toy_policy([toy_embodiment("toy", gripper=True)], gripper_bce_weight=0.5)
    committed = np.array([[0.2, -0.4, 1.0], [0.25, -0.35, 1.0], [0.3, -0.3, 0.0]])  # two joints and the gripper
    eager = [policy.predict_chunk(OBSERVATION, "push the block", "toy", prefix=committed, seed=1),
             policy.predict_chunk(OBSERVATION, "push it", "toy", seed=2)]
    torch._dynamo.reset()  # compile from scratch, not from another test's cache
    policy.optimize_for_inference(compile=True)
    compiled = [policy.predict_chunk(OBSERVATION, "push the block", "toy", prefix=committed, seed=1),
                policy.predict_chunk(OBSERVATION, "push it", "toy", seed=2)]  # fewer text tokens: a new shape
    for before, after in zip(eager, compiled):
        np.testing.assert_allclose(after.actions, before.actions, rtol=0, atol=TOLERANCE)
    np.testing.assert_array_equal(compiled[0].actions[:3], committed)
    policy.optimize_for_inference()  # both off: the eager path again, bit for bit
    again = policy.predict_chunk(OBSERVATION, "push it", "toy", seed=2)
    np.testing.assert_array_equal(again.actions, eager[1].actions)
