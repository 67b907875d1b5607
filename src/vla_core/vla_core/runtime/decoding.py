"""From chunks in an action space to joint targets, and back for the committed prefix.

The policy predicts rows in the embodiment's action space, relative to the robot at the chunk's
observation (its *chunk start*). The executor turns them into absolute joint targets: decode the
rows with the chunk-start poses or joints (`vla_core.actions`), then, for end-effector spaces,
solve IK per arm and per row, each row seeded from the previous solution (the first from the
chunk-start joints), so consecutive targets stay on one IK branch. Gripper channels become the
gripper joint's open or closed position.

The policy node uses the same decoder the other way round: committed rows arrive relative to
the start of the chunk they came from and must be re-expressed relative to the new observation
before the model conditions on them (Xiaomi-Robotics-0's prefix is in the new chunk's frame).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vla_core.actions import ArmState, ArmTrajectory, decode_chunk, encode_chunk, get_action_space
from vla_core.embodiment import EmbodimentSpec
from vla_core.kinematics import UNDERACTUATED_ORIENTATION_WEIGHT, RobotKinematics

# IK for predicted rows: least motion from the previous row, the tool's position before its
# orientation (see `vla_core.kinematics`). A predicted orientation is never exact, and meeting
# it exactly near a wrist singularity swings the wrist a radian between rows.
IK_ANCHOR_WEIGHT = 1e-3
IK_ORIENTATION_WEIGHT = UNDERACTUATED_ORIENTATION_WEIGHT  # the five-joint arm's trade, for every arm


@dataclass(frozen=True)
class ChunkStart:
    """The robot at a chunk's observation: joints (the spec's joint order) and each arm's pose."""

    joints: np.ndarray  # (state_dim,)
    poses: tuple[np.ndarray, ...]  # (4, 4) per arm, in the base frame


@dataclass(frozen=True)
class JointTargets:
    """Absolute joint targets of a chunk, one row per step, in the spec's joint order.

    Rows whose IK missed its tolerance are NaN, so the safety filter rejects them and the robot
    holds instead of going somewhere near the requested pose.
    """

    positions: np.ndarray  # (H, state_dim)
    unreachable_rows: tuple[int, ...]
    worst_position_error: float  # metres, over the reachable rows (0 for joint spaces)
    worst_orientation_error: float  # radians


class ChunkDecoder:
    """Chunk rows <-> joint targets for one embodiment, with Pinocchio kinematics."""

    def __init__(self, spec: EmbodimentSpec, kinematics: RobotKinematics | None = None,
                 position_tolerance: float = 0.01, orientation_tolerance: float = 0.2,
                 ik_iterations: int = 100) -> None:
        self.spec = spec
        self.space = get_action_space(spec.action_space)
        self.kinematics = kinematics or RobotKinematics(spec)
        self.position_tolerance = position_tolerance
        self.orientation_tolerance = orientation_tolerance
        self.ik_iterations = ik_iterations
        self._joint_index = {name: i for i, name in enumerate(spec.joint_names)}
        self._grippers = [self.kinematics.gripper_positions(arm) for arm in spec.arms]

    # ---- chunk start ----------------------------------------------------------------------
    def start_from_joints(self, joints: np.ndarray) -> ChunkStart:
        joints = np.asarray(joints, dtype=np.float64)
        poses = tuple(self.kinematics.forward(joints)) if self.space.uses_poses else ()
        return ChunkStart(joints.copy(), poses)

    def tool_poses(self, start: ChunkStart) -> tuple[np.ndarray, ...]:
        """Each arm's pose at `start` (what `Observation.tool_poses` carries): the poses a pose
        space already computed, else forward kinematics of its joints."""
        return start.poses or tuple(self.kinematics.forward(start.joints))

    def start_from_message_fields(self, poses: np.ndarray, positions: np.ndarray) -> ChunkStart:
        """A chunk start as ActionChunk carries it: (arms, 4, 4) poses or the (state_dim,) joints."""
        if self.space.uses_poses:
            if len(poses) != len(self.spec.arms):
                raise ValueError(f"{self.spec.action_space} chunk for {self.spec.name} needs "
                                 f"{len(self.spec.arms)} chunk-start poses, got {len(poses)}")
            return ChunkStart(np.asarray(positions, dtype=np.float64), tuple(poses))
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != (self.spec.state_dim,):
            raise ValueError(f"{self.spec.action_space} chunk for {self.spec.name} needs {self.spec.state_dim} "
                             f"chunk-start positions ({', '.join(self.spec.joint_names)}), got {positions.shape}")
        return ChunkStart(positions, ())

    def _arm_states(self, start: ChunkStart) -> list[ArmState]:
        states = []
        for index, arm in enumerate(self.spec.arms):
            joints = (start.joints[[self._joint_index[n] for n in arm.joint_names]]
                      if len(start.joints) else None)
            states.append(ArmState(pose=start.poses[index] if start.poses else None, joints=joints))
        return states

    # ---- rows <-> absolute trajectories --------------------------------------------------
    def trajectories(self, rows: np.ndarray, start: ChunkStart) -> list[ArmTrajectory]:
        return decode_chunk(self.spec.action_space, rows, self._arm_states(start),
                            [len(arm.joint_names) for arm in self.spec.arms], self.spec.has_gripper)

    def reexpress(self, source_rows: np.ndarray, first: int, source: ChunkStart, target: ChunkStart) -> np.ndarray:
        """Rows `source_rows[first:]` (relative to `source`) rewritten relative to `target`.

        They describe the same absolute motion. The rows before `first` only anchor delta
        spaces, whose rows chain from their predecessor; in the result the first row's
        predecessor is the target start, since the committed rows begin right after the new
        observation.
        """
        if not 0 <= first < len(source_rows):
            raise ValueError(f"prefix start {first} is outside the source chunk's {len(source_rows)} rows")
        absolute = [ArmTrajectory(poses=None if t.poses is None else t.poses[first:],
                                  joints=None if t.joints is None else t.joints[first:],
                                  gripper=None if t.gripper is None else t.gripper[first:])
                    for t in self.trajectories(source_rows, source)]
        return encode_chunk(self.spec.action_space, absolute, self._arm_states(target), self.spec.has_gripper)

    # ---- rows -> joint targets -------------------------------------------------------------
    def joint_targets(self, rows: np.ndarray, start: ChunkStart, seed: np.ndarray) -> JointTargets:
        """Absolute joint targets (H, state_dim); `seed` are the joints IK starts from."""
        trajectories = self.trajectories(rows, start)
        horizon = len(rows)
        positions = np.tile(np.asarray(seed, dtype=np.float64), (horizon, 1))
        unreachable: set[int] = set()
        worst_position = worst_orientation = 0.0
        for arm_index, (arm, trajectory) in enumerate(zip(self.spec.arms, trajectories)):
            columns = [self._joint_index[n] for n in arm.joint_names]
            if trajectory.joints is not None:
                positions[:, columns] = trajectory.joints
            else:
                state = positions[0].copy()
                for step in range(horizon):
                    result = self.kinematics.inverse(arm_index, trajectory.poses[step], state,
                                                     max_iterations=self.ik_iterations,
                                                     orientation_weight=IK_ORIENTATION_WEIGHT,
                                                     anchor_weight=IK_ANCHOR_WEIGHT)
                    positions[step, columns] = result.joints
                    if (result.position_error > self.position_tolerance
                            or result.orientation_error > self.orientation_tolerance):
                        unreachable.add(step)  # the next row is seeded from the last reachable one
                    else:
                        state[columns] = result.joints
                        worst_position = max(worst_position, result.position_error)
                        worst_orientation = max(worst_orientation, result.orientation_error)
            if trajectory.gripper is not None:
                opened, closed = self._grippers[arm_index]
                positions[:, self._joint_index[arm.gripper_joint]] = np.where(trajectory.gripper > 0.5, closed, opened)
        for step in unreachable:
            positions[step] = np.nan
        return JointTargets(positions, tuple(sorted(unreachable)), worst_position, worst_orientation)

    def end_effector_positions(self, joints: np.ndarray) -> np.ndarray:
        """(arms, 3) end-effector positions in the base frame, for the workspace check."""
        return np.stack([pose[:3, 3] for pose in self.kinematics.forward(joints)])

    def target_names(self) -> Sequence[str]:
        """What ActionChunk.target_names lists: joints for joint spaces, end-effector frames otherwise."""
        if self.space.uses_poses:
            return [arm.ee_frame for arm in self.spec.arms] + [a.gripper_joint for a in self.spec.arms if a.gripper_joint]
        return list(self.spec.joint_names)
