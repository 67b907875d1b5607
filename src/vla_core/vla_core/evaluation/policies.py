"""What the evaluator runs: a checkpoint, or a scripted oracle that proves the loop can succeed.

Both answer `predict_chunk` exactly as `VLAPolicy` does (rows in the embodiment's action space,
relative to the observation, committed prefix reproduced as the first rows), so the evaluator
treats them alike. The oracle is privileged: it reads the scene (cube pose, simulated time)
instead of the cameras. A policy at 0 % in a loop where the oracle succeeds fails on its own.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

from vla_core.backends import PolicyBackend, load_backends
from vla_core.backends.joint_targets import encode_joint_targets
from vla_core.embodiment import EmbodimentSpec, load_embodiment
from vla_core.evaluation.environments import EpisodeTask, SimScene
from vla_core.kinematics import RobotKinematics
from vla_core.model.batching import Observation
from vla_core.model.policy import PredictedChunk


class PolicyUnderTest(Protocol):
    def start_episode(self, scene: SimScene, task: EpisodeTask, seed: int) -> None:
        """Called after the scene is reset, before the first chunk of an episode."""

    def predict_chunk(self, observation: Observation, instruction: str, embodiment: str,
                      prefix: np.ndarray | None = None, seed: int | None = None) -> PredictedChunk: ...


class CheckpointPolicy:
    """A policy directory served through its backend (`vla_core.backends`), one per profile; it
    sees only what the robot's sensors give, except a privileged-state diagnostic
    (`PolicyRequirements.object_pose`), which is handed the named cube's true pose from the scene."""

    def __init__(self, backends: dict[str, PolicyBackend]) -> None:
        self.backends = backends
        self._scene: SimScene | None = None
        self._task: EpisodeTask | None = None

    @classmethod
    def load(cls, directory: str, embodiments: list[str]) -> CheckpointPolicy:
        """The policy, refused unless it drives each named profile as that profile says (the
        closed loop decodes with the profile, exactly as the executor node does)."""
        return cls(load_backends(directory, [load_embodiment(name) for name in embodiments]))

    def start_episode(self, scene: SimScene, task: EpisodeTask, seed: int) -> None:
        """A one-step or history policy keeps no state between chunks; the scene and task are kept
        for a privileged-state diagnostic only."""
        self._scene, self._task = scene, task

    def predict_chunk(self, observation: Observation, instruction: str, embodiment: str,
                      prefix: np.ndarray | None = None, seed: int | None = None) -> PredictedChunk:
        if embodiment not in self.backends:
            raise ValueError(f"the policy was loaded for {sorted(self.backends)}, not for embodiment {embodiment!r}")
        backend = self.backends[embodiment]
        if backend.requirements.object_pose:
            if self._scene is None or self._task is None:
                raise RuntimeError("a privileged-state policy needs start_episode (the scene) before predict_chunk")
            observation = dataclasses.replace(observation, object_pose=self._scene.cube_pose(self._task.colour))
        return backend.predict_chunk(observation, instruction, prefix, seed)

    def close(self) -> None:
        """End what the backends hold (a LeRobot backend's child process)."""
        for backend in self.backends.values():
            backend.close()


class ScriptedOracle:
    """Replays the embodiment's scripted teleoperator (`vla_core.sim.factory.make_teleop`) as chunks.

    At a request, the chunk's row j is the plan's joints for control tick r + 1 + j (the
    scheduler's timing convention, r the tick of the observation), encoded in the embodiment's
    action space relative to the observed joints; the executor decodes it back through IK.
    """

    def __init__(self, spec: EmbodimentSpec) -> None:
        from vla_core.sim.factory import make_teleop

        self.spec = spec
        self.kinematics = RobotKinematics(spec)
        self.teleop = make_teleop(spec, tremor=0.0)
        self._scene: SimScene | None = None
        self._plan = None

    def start_episode(self, scene: SimScene, task: EpisodeTask, seed: int) -> None:
        from vla_core.sim.rollout import plan_task

        self._scene = scene
        self._plan = plan_task(scene, task, self.teleop, np.random.default_rng(seed))

    def predict_chunk(self, observation: Observation, instruction: str, embodiment: str,
                      prefix: np.ndarray | None = None, seed: int | None = None) -> PredictedChunk:
        if self._plan is None or self._scene is None:
            raise RuntimeError("ScriptedOracle.predict_chunk before start_episode")
        spec = self.spec
        rate = spec.control_rate_hz
        tick = round(self._scene.time * rate)
        joints = np.stack([self._plan.at((tick + 1 + j) / rate) for j in range(spec.chunk_size)])
        actions = encode_joint_targets(self.kinematics, joints, observation.state)
        committed = 0 if prefix is None else len(prefix)
        if committed:
            actions[:committed] = prefix  # as VLAPolicy does: the committed rows come back unchanged
        return PredictedChunk(actions, spec.name, spec.action_space, spec.channel_names, committed, 0.0, 0.0)
