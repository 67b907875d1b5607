"""Absolute end-effector poses of joint trajectories, in X-VLA's layout (xyz + rotate-6D + binary gripper).

Datasets store actions as absolute joint targets; this is the pose view of the same targets,
computed once at conversion with forward kinematics so readers (dataset viewers, pose-space
training) need no robot model. The layout is the `abs_eef` action space's, arm after arm.
"""
from __future__ import annotations

import numpy as np

from vla_core.actions import get_action_space
from vla_core.embodiment import EmbodimentSpec
from vla_core.geometry import matrix_to_rot6d
from vla_core.kinematics import RobotKinematics


def eef_pose_names(spec: EmbodimentSpec) -> list[str]:
    """Channel names of `absolute_eef_poses`: `<arm>/x`, ..., `<arm>/rot6d_5`, `<arm>/gripper`."""
    space = get_action_space("abs_eef")
    names: list[str] = []
    for arm in spec.arms:
        names += space.arm_channel_names(arm.name, arm.joint_names, spec.has_gripper)
    return names


def gripper_closed(kinematics: RobotKinematics, arm_index: int, positions: np.ndarray) -> np.ndarray:
    """1.0 where the gripper joint is nearer its closed than its open position, else 0.0
    (the binary gripper channel of the action spaces)."""
    opened, closed = kinematics.gripper_positions(kinematics.spec.arms[arm_index])
    positions = np.asarray(positions, dtype=np.float64)
    return (np.abs(positions - closed) < np.abs(positions - opened)).astype(np.float64)


def absolute_eef_poses(kinematics: RobotKinematics, joints: np.ndarray) -> np.ndarray:
    """(T, arms x (9 + gripper)) poses in the base frame for (T, state_dim) joints in the spec's order."""
    spec = kinematics.spec
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 2 or len(joints) == 0 or joints.shape[1] != spec.state_dim:
        raise ValueError(f"{spec.name} joints must be (T >= 1, {spec.state_dim}) for {list(spec.joint_names)}, "
                         f"got {joints.shape}")
    transforms = kinematics.forward_many(joints)  # (T, arms, 4, 4)
    index = {name: i for i, name in enumerate(spec.joint_names)}
    blocks = []
    for arm_index, arm in enumerate(spec.arms):
        poses = transforms[:, arm_index]
        blocks += [poses[:, :3, 3], matrix_to_rot6d(poses[:, :3, :3])]
        if spec.has_gripper:
            blocks.append(gripper_closed(kinematics, arm_index, joints[:, index[arm.gripper_joint]])[:, None])
    return np.concatenate(blocks, axis=-1)
