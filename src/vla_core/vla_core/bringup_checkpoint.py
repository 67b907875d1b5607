"""An untrained checkpoint whose chunks barely move the robot, for bring-up.

Wiring a policy into a robot stack (topics, QoS, rates, IK, safety limits, controllers) should
be checked before any training, and with a policy that cannot hurt anyone. This writes a real
checkpoint (the default architecture, randomly initialised) whose action statistics are centred
on "no motion" with a spread of `motion_scale`: relative and delta spaces decode to targets
within a few millimetres (radians for joints) of the chunk start, grippers stay open. The
absolute spaces (`abs_eef`, `joint_abs`) centre on the middle of the joint ranges instead,
which is a real motion: use them for bring-up only with the executor's limits set tight.
`vla init-checkpoint` (vla_core.cli.init_checkpoint) writes one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_core.actions import ArmState, ArmTrajectory, encode_chunk
from vla_core.embodiment import EmbodimentSpec, load_embodiment
from vla_core.kinematics import RobotKinematics
from vla_core.normalization import EmbodimentNormalizers, Normalizer


def still_normalizers(spec: EmbodimentSpec, motion_scale: float) -> EmbodimentNormalizers:
    """Action statistics centred on the row that means "stay at the chunk start"; state
    statistics from the joint ranges (mean mid-range, std half the range)."""
    kinematics = RobotKinematics(spec)
    lower, upper = kinematics.position_limits()
    middle = np.where(np.isfinite(lower + upper), (lower + upper) / 2, 0.0)
    half_range = np.where(np.isfinite(upper - lower), (upper - lower) / 2, 1.0)
    poses = kinematics.forward(middle)
    index = {name: i for i, name in enumerate(spec.joint_names)}
    trajectories, starts = [], []
    for arm, pose in zip(spec.arms, poses):
        joints = middle[[index[n] for n in arm.joint_names]]
        trajectories.append(ArmTrajectory(poses=pose[None], joints=joints[None], gripper=np.zeros(1)))
        starts.append(ArmState(pose=pose, joints=joints))
    still = encode_chunk(spec.action_space, trajectories, starts, spec.has_gripper)[0]
    action = Normalizer("mean_std", still, np.full(len(still), motion_scale), np.zeros(len(still), bool))
    state = Normalizer("mean_std", middle, half_range, np.zeros(len(middle), bool))
    return EmbodimentNormalizers(action, state)


def write_initial_checkpoint(embodiments: list[str], output: Path, motion_scale: float = 0.002, seed: int = 0,
                             **config_overrides) -> Path:
    import torch

    from vla_core.model.configuration import PolicyConfig
    from vla_core.model.policy import VLAPolicy

    specs = {spec.name: spec for spec in map(load_embodiment, embodiments)}
    horizons = {spec.chunk_size for spec in specs.values()}
    if len(horizons) != 1:
        raise ValueError(f"embodiments {embodiments} have different chunk sizes {sorted(horizons)}; one policy "
                         "predicts one horizon")
    torch.manual_seed(seed)
    config = PolicyConfig(horizon=horizons.pop(), **config_overrides)
    policy = VLAPolicy(config, specs, {name: still_normalizers(spec, motion_scale) for name, spec in specs.items()})
    return policy.save_pretrained(output, {"kind": "untrained bring-up checkpoint", "motion_scale": motion_scale,
                                           "seed": seed})
