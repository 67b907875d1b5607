"""Absolute joint targets (what LeRobot datasets and policies call `action`, and what the scripted
teleoperator plans) as a chunk in the embodiment's action space, relative to the observed joints.

The executor decodes every chunk with the profile's action space; a policy that speaks joint
targets is re-expressed here once, so the executor, its committed prefix and its safety checks
see one kind of chunk whatever produced it.
"""
from __future__ import annotations

import numpy as np

from vla_core.actions import ArmState, ArmTrajectory, encode_chunk
from vla_core.data.eef_pose import gripper_closed
from vla_core.kinematics import RobotKinematics


def encode_joint_targets(kinematics: RobotKinematics, joints: np.ndarray, state: np.ndarray) -> np.ndarray:
    """(H, K) chunk in `kinematics.spec`'s action space for joint targets `joints` (H, J) in the
    profile's `joint_names` order, encoded relative to the observed joints `state` (J,)."""
    spec = kinematics.spec
    joints = np.asarray(joints, dtype=np.float64)
    state = np.asarray(state, dtype=np.float64)
    if joints.ndim != 2 or joints.shape[1] != len(spec.joint_names) or state.shape != (len(spec.joint_names),):
        raise ValueError(f"joint targets must be (H, {len(spec.joint_names)}) and the state ({len(spec.joint_names)},) "
                         f"in {spec.name}'s joint order {list(spec.joint_names)}, got {joints.shape} and {state.shape}")
    row_poses = [kinematics.forward(row) for row in joints]
    start_poses = kinematics.forward(state)
    trajectories, starts = [], []
    for index, arm in enumerate(spec.arms):
        columns = [spec.joint_names.index(name) for name in arm.joint_names]
        gripper = spec.joint_names.index(arm.gripper_joint) if arm.gripper_joint else None
        trajectories.append(ArmTrajectory(poses=np.stack([poses[index] for poses in row_poses]),
                                          joints=joints[:, columns],
                                          gripper=None if gripper is None else
                                          gripper_closed(kinematics, index, joints[:, gripper])))
        starts.append(ArmState(pose=start_poses[index], joints=state[columns]))
    return encode_chunk(spec.action_space, trajectories, starts, spec.has_gripper)
