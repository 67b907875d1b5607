"""Action representations: encode a trajectory into chunk rows, decode rows back into targets.

A chunk is an (H, K) array: one block of channels per arm, in arm order, each block the arm's
motion channels followed by its gripper channel when the embodiment has a gripper.

Pose spaces write each step as xyz (3) + rotate-6D (6) of a transform D_t (see
`vla_core.geometry` for conventions); with T_t the absolute end-effector pose at step t in the
base frame, T_0 the pose at the chunk's start and T_{-1} = T_0:

| space            | D_t                                   | from (Rethinking-VLA / X-VLA)   |
| ---------------- | ------------------------------------- | ------------------------------- |
| `eef_relative`   | T_0^-1 T_t (pose in the start EEF frame) | Rethinking-VLA's best         |
| `eef_delta`      | T_{t-1}^-1 T_t                         | per-step, in the moving frame   |
| `world_relative` | p_t - p_0, R_t R_0^T (base frame)      |                                 |
| `world_delta`    | p_t - p_{t-1}, R_t R_{t-1}^T           |                                 |
| `abs_eef`        | p_t, R_t                               | X-VLA                           |

Joint spaces: `joint_abs` writes q_t, `joint_relative` q_t - q_0 (the joint counterpart of
`eef_relative`, with no IK between the policy and the robot, which a five-joint arm's pose rows
need), `joint_delta` q_t - q_{t-1} (q_{-1} = q_0, the start joints). The gripper channel is
binary: 1 = closed (closing), 0 = open; decode thresholds at 0.5.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vla_core.geometry import invert_transform, make_transform, matrix_to_rot6d, rot6d_to_matrix

POSE_DIM = 9  # xyz + rotate-6D


@dataclass(frozen=True)
class ArmState:
    """What an arm's chunk is relative to: its end-effector pose and joints at the chunk start."""

    pose: np.ndarray | None = None  # (4, 4) in the base frame
    joints: np.ndarray | None = None  # (J,)


@dataclass(frozen=True)
class ArmTrajectory:
    """Absolute targets of one arm over a chunk."""

    poses: np.ndarray | None = None  # (H, 4, 4)
    joints: np.ndarray | None = None  # (H, J)
    gripper: np.ndarray | None = None  # (H,) 0 open / 1 closed


def _pose_rows(transforms: np.ndarray) -> np.ndarray:
    return np.concatenate([transforms[:, :3, 3], matrix_to_rot6d(transforms[:, :3, :3])], axis=-1)


def _row_transforms(rows: np.ndarray) -> np.ndarray:
    return make_transform(rows[:, :3], rot6d_to_matrix(rows[:, 3:POSE_DIM]))


def _previous(values: np.ndarray, start: np.ndarray) -> np.ndarray:
    """values shifted one step: [start, values_0, ..., values_{H-2}]."""
    return np.concatenate([start[None], values[:-1]], axis=0)


def _encode_eef_relative(poses: np.ndarray, start: np.ndarray) -> np.ndarray:
    return _pose_rows(invert_transform(start)[None] @ poses)


def _decode_eef_relative(rows: np.ndarray, start: np.ndarray) -> np.ndarray:
    return start[None] @ _row_transforms(rows)


def _encode_eef_delta(poses: np.ndarray, start: np.ndarray) -> np.ndarray:
    return _pose_rows(invert_transform(_previous(poses, start)) @ poses)


def _decode_eef_delta(rows: np.ndarray, start: np.ndarray) -> np.ndarray:
    steps = _row_transforms(rows)
    poses = np.empty_like(steps)
    current = start
    for t, step in enumerate(steps):
        current = current @ step
        poses[t] = current
    return poses


def _world_difference(poses: np.ndarray, reference: np.ndarray) -> np.ndarray:
    rotation = poses[:, :3, :3] @ np.swapaxes(reference[:, :3, :3], -1, -2)
    return make_transform(poses[:, :3, 3] - reference[:, :3, 3], rotation)


def _world_apply(difference: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return make_transform(difference[:3, 3] + reference[:3, 3], difference[:3, :3] @ reference[:3, :3])


def _encode_world_relative(poses: np.ndarray, start: np.ndarray) -> np.ndarray:
    return _pose_rows(_world_difference(poses, np.broadcast_to(start, poses.shape)))


def _decode_world_relative(rows: np.ndarray, start: np.ndarray) -> np.ndarray:
    return np.stack([_world_apply(d, start) for d in _row_transforms(rows)])


def _encode_world_delta(poses: np.ndarray, start: np.ndarray) -> np.ndarray:
    return _pose_rows(_world_difference(poses, _previous(poses, start)))


def _decode_world_delta(rows: np.ndarray, start: np.ndarray) -> np.ndarray:
    poses = []
    current = start
    for difference in _row_transforms(rows):
        current = _world_apply(difference, current)
        poses.append(current)
    return np.stack(poses)


def _encode_abs_eef(poses: np.ndarray, start: np.ndarray) -> np.ndarray:
    return _pose_rows(poses)


def _decode_abs_eef(rows: np.ndarray, start: np.ndarray) -> np.ndarray:
    return _row_transforms(rows)


@dataclass(frozen=True)
class ActionSpace:
    """One representation: how an arm's absolute targets become chunk channels and back."""

    name: str
    kind: str  # "pose" or "joint"
    _encode: Callable[[np.ndarray, np.ndarray], np.ndarray]
    _decode: Callable[[np.ndarray, np.ndarray], np.ndarray]

    @property
    def uses_poses(self) -> bool:
        return self.kind == "pose"

    def arm_dim(self, n_joints: int, with_gripper: bool) -> int:
        return (POSE_DIM if self.uses_poses else n_joints) + int(with_gripper)

    def arm_channel_names(self, arm: str, joint_names: Sequence[str], with_gripper: bool) -> list[str]:
        if self.uses_poses:
            names = [f"{arm}/{axis}" for axis in ("x", "y", "z")] + [f"{arm}/rot6d_{i}" for i in range(6)]
        else:
            names = [f"{arm}/{joint}" for joint in joint_names]
        return names + ([f"{arm}/gripper"] if with_gripper else [])

    def encode_arm(self, trajectory: ArmTrajectory, start: ArmState, with_gripper: bool) -> np.ndarray:
        if self.uses_poses:
            poses = _require(trajectory.poses, f"{self.name} needs end-effector poses (H, 4, 4)")
            start_pose = _require(start.pose, f"{self.name} needs the chunk-start pose (4, 4)")
            rows = self._encode(np.asarray(poses, dtype=np.float64), np.asarray(start_pose, dtype=np.float64))
        else:
            joints = np.asarray(_require(trajectory.joints, f"{self.name} needs joint positions (H, J)"), np.float64)
            start_joints = np.asarray(_require(start.joints, f"{self.name} needs the chunk-start joints (J,)"), np.float64)
            rows = self._encode(joints, start_joints)
        if with_gripper:
            gripper = _require(trajectory.gripper, f"{self.name} with a gripper needs gripper states (H,)")
            rows = np.concatenate([rows, np.asarray(gripper, np.float64)[:, None]], axis=-1)
        return rows

    def decode_arm(self, rows: np.ndarray, start: ArmState, with_gripper: bool) -> ArmTrajectory:
        rows = np.asarray(rows, dtype=np.float64)
        gripper = (rows[:, -1] > 0.5).astype(np.float64) if with_gripper else None
        motion = rows[:, :-1] if with_gripper else rows
        if self.uses_poses:
            start_pose = _require(start.pose, f"{self.name} needs the chunk-start pose (4, 4) to decode")
            return ArmTrajectory(poses=self._decode(motion, np.asarray(start_pose, np.float64)), gripper=gripper)
        start_joints = _require(start.joints, f"{self.name} needs the chunk-start joints (J,) to decode")
        return ArmTrajectory(joints=self._decode(motion, np.asarray(start_joints, np.float64)), gripper=gripper)


def _require(value, message: str):
    if value is None:
        raise ValueError(message)
    return value


ACTION_SPACES: dict[str, ActionSpace] = {
    space.name: space
    for space in (
        ActionSpace("eef_relative", "pose", _encode_eef_relative, _decode_eef_relative),
        ActionSpace("eef_delta", "pose", _encode_eef_delta, _decode_eef_delta),
        ActionSpace("world_relative", "pose", _encode_world_relative, _decode_world_relative),
        ActionSpace("world_delta", "pose", _encode_world_delta, _decode_world_delta),
        ActionSpace("abs_eef", "pose", _encode_abs_eef, _decode_abs_eef),
        ActionSpace("joint_abs", "joint", lambda q, q0: q.copy(), lambda rows, q0: rows.copy()),
        ActionSpace("joint_relative", "joint", lambda q, q0: q - q0, lambda rows, q0: q0 + rows),
        ActionSpace("joint_delta", "joint", lambda q, q0: q - _previous(q, q0), lambda rows, q0: q0 + np.cumsum(rows, axis=0)),
    )
}


def get_action_space(name: str) -> ActionSpace:
    try:
        return ACTION_SPACES[name]
    except KeyError:
        raise ValueError(f"unknown action space {name!r}; expected one of {', '.join(ACTION_SPACES)}") from None


def encode_chunk(space: str, trajectories: Sequence[ArmTrajectory], starts: Sequence[ArmState],
                 with_gripper: bool) -> np.ndarray:
    """(H, K) chunk of all arms, arm blocks in order."""
    if len(trajectories) != len(starts):
        raise ValueError(f"{len(trajectories)} arm trajectories but {len(starts)} start states")
    action_space = get_action_space(space)
    return np.concatenate(
        [action_space.encode_arm(t, s, with_gripper) for t, s in zip(trajectories, starts)], axis=-1
    )


def decode_chunk(space: str, chunk: np.ndarray, starts: Sequence[ArmState], joints_per_arm: Sequence[int],
                 with_gripper: bool) -> list[ArmTrajectory]:
    """Split an (H, K) chunk into arm blocks and decode each into absolute targets."""
    action_space = get_action_space(space)
    dims = [action_space.arm_dim(n, with_gripper) for n in joints_per_arm]
    chunk = np.asarray(chunk, dtype=np.float64)
    if chunk.ndim != 2 or chunk.shape[1] != sum(dims):
        raise ValueError(f"{space} chunk for arms with {list(joints_per_arm)} joints must be (H, {sum(dims)}), "
                         f"got {chunk.shape}")
    bounds = np.cumsum([0, *dims])
    return [action_space.decode_arm(chunk[:, lo:hi], start, with_gripper)
            for lo, hi, start in zip(bounds[:-1], bounds[1:], starts)]


def to_unified(chunk: np.ndarray, max_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad an (H, K) chunk to (H, max_dim) with a validity mask (Qwen-VLA's unified action tensor)."""
    chunk = np.asarray(chunk)
    horizon, dim = chunk.shape
    if dim > max_dim:
        raise ValueError(f"chunk has {dim} channels, more than the unified tensor's {max_dim}")
    unified = np.zeros((horizon, max_dim), dtype=chunk.dtype)
    unified[:, :dim] = chunk
    mask = np.zeros((horizon, max_dim), dtype=bool)
    mask[:, :dim] = True
    return unified, mask


def from_unified(unified: np.ndarray, dim: int) -> np.ndarray:
    return np.asarray(unified)[..., :dim]
