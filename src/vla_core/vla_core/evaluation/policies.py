"""What the evaluator runs: a checkpoint, or a scripted oracle that proves the loop can succeed.

Both answer `predict_chunk` exactly as `VLAPolicy` does (rows in the embodiment's action space,
relative to the observation, committed prefix reproduced as the first rows), so the evaluator
treats them alike. The oracle is privileged: it reads the scene (cube pose, simulated time)
instead of the cameras. A policy at 0 % in a loop where the oracle succeeds fails on its own.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from vla_core.actions import ArmState, ArmTrajectory, encode_chunk
from vla_core.embodiment import EmbodimentSpec
from vla_core.evaluation.environments import EpisodeTask, SimScene
from vla_core.kinematics import RobotKinematics
from vla_core.model.batching import Observation
from vla_core.model.policy import PredictedChunk, VLAPolicy


class PolicyUnderTest(Protocol):
    def start_episode(self, scene: SimScene, task: EpisodeTask, seed: int) -> None:
        """Called after the scene is reset, before the first chunk of an episode."""

    def predict_chunk(self, observation: Observation, instruction: str, embodiment: str,
                      prefix: np.ndarray | None = None, seed: int | None = None) -> PredictedChunk: ...


class CheckpointPolicy:
    """A trained (or bring-up) checkpoint; it sees only what the robot's sensors give."""

    def __init__(self, policy: VLAPolicy) -> None:
        self.policy = policy

    @classmethod
    def load(cls, directory: str, embodiments: list[str]) -> CheckpointPolicy:
        policy = VLAPolicy.from_pretrained(directory)
        missing = [name for name in embodiments if name not in policy.embodiments]
        if missing:
            raise ValueError(f"checkpoint {directory} was trained for {sorted(policy.embodiments)}, not for {missing}")
        return cls(policy)

    def start_episode(self, scene: SimScene, task: EpisodeTask, seed: int) -> None:
        """A one-step or history policy keeps no state between chunks: nothing to reset."""

    def predict_chunk(self, observation: Observation, instruction: str, embodiment: str,
                      prefix: np.ndarray | None = None, seed: int | None = None) -> PredictedChunk:
        return self.policy.predict_chunk(observation, instruction, embodiment, prefix, seed)


class ScriptedPickOracle:
    """Replays the scripted teleoperator's plan (`vla_core.sim.scripted_pick`) as action chunks.

    At a request, the chunk's row j is the plan's joints for control tick r + 1 + j (the
    scheduler's timing convention, r the tick of the observation), encoded in the embodiment's
    action space relative to the observed joints; the executor decodes it back through IK.
    """

    def __init__(self, spec: EmbodimentSpec, gripper_threshold: float | None = None) -> None:
        from vla_core.sim.scripted_pick import ScriptedPickTeleop

        self.spec = spec
        self.kinematics = RobotKinematics(spec)
        self.teleop = ScriptedPickTeleop(self.kinematics, rate_hz=spec.control_rate_hz)
        geometry = self.teleop.geometry
        # the plan's gripper joint below the middle of its open and closed positions means "closed"
        self.gripper_threshold = (gripper_threshold if gripper_threshold is not None
                                  else (geometry.gripper_open + geometry.gripper_closed) / 2)
        self._scene: SimScene | None = None
        self._plan = None

    def start_episode(self, scene: SimScene, task: EpisodeTask, seed: int) -> None:
        self._scene = scene
        self._plan = self.teleop.plan(scene.joint_positions(), scene.cube(task.colour).position,
                                      scene.cube_yaw(task.colour), np.random.default_rng(seed))

    def predict_chunk(self, observation: Observation, instruction: str, embodiment: str,
                      prefix: np.ndarray | None = None, seed: int | None = None) -> PredictedChunk:
        if self._plan is None or self._scene is None:
            raise RuntimeError("ScriptedPickOracle.predict_chunk before start_episode")
        spec = self.spec
        rate = spec.control_rate_hz
        tick = round(self._scene.time * rate)
        joints = np.stack([self._plan.at((tick + 1 + j) / rate) for j in range(spec.chunk_size)])
        state = np.asarray(observation.state, dtype=np.float64)
        arm = spec.arms[0]
        arm_columns = [spec.joint_names.index(name) for name in arm.joint_names]
        gripper_column = spec.joint_names.index(arm.gripper_joint)
        poses = np.stack([self.kinematics.forward(row)[0] for row in joints])
        trajectory = ArmTrajectory(poses=poses, joints=joints[:, arm_columns],
                                   gripper=(joints[:, gripper_column] < self.gripper_threshold).astype(np.float64))
        start = ArmState(pose=self.kinematics.forward(state)[0], joints=state[arm_columns])
        actions = encode_chunk(spec.action_space, [trajectory], [start], spec.has_gripper)
        committed = 0 if prefix is None else len(prefix)
        if committed:
            actions[:committed] = prefix  # as VLAPolicy does: the committed rows come back unchanged
        return PredictedChunk(actions, spec.name, spec.action_space, spec.channel_names, committed, 0.0, 0.0)
