"""What the node, the executor and `vla eval` need from a policy, whoever implemented it.

A backend is one policy bound to one embodiment profile: it says what it reads and writes
(`PolicyRequirements`) and predicts a chunk in the robot's units (`PredictedChunk`: rows in the
profile's action space, relative to the observation where the space is relative). The callers
never see the model class, so a policy from another framework (LeRobot, in its own process and
environment) is served by the same node, executor and evaluator as the native one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from vla_core.model.batching import Observation
from vla_core.model.policy import PredictedChunk


class BackendError(RuntimeError):
    """A policy directory that cannot be served as the profile asks, or a backend that failed;
    `cause` is a short snake_case name for status messages and refusals."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class CameraNeed:
    """One camera the policy reads: the profile's camera name and the size the policy was trained at."""

    name: str
    height: int
    width: int


@dataclass(frozen=True)
class PolicyRequirements:
    """What a policy reads and writes, so the node can check its inputs and the executor its output.

    `accepts_prefix`: the policy conditions on committed rows (the async executor's committed
    prefix); without it async mode switches to a new chunk at the latency-matched row instead.
    `joint_velocity` / `tool_poses`: `Observation` fields the policy needs filled.
    `object_pose`: a diagnostic that reads the true pose of the named object (`Observation.object_pose`)
    instead of cameras; only a simulation knows it, so `vla eval` feeds it and the policy node refuses it.
    """

    backend: str
    cameras: tuple[CameraNeed, ...]
    state_features: tuple[str, ...]
    action_features: tuple[str, ...]
    chunk_length: int
    action_space: str
    takes_language: bool
    accepts_prefix: bool
    joint_velocity: bool = False
    tool_poses: bool = False
    object_pose: bool = False


@runtime_checkable
class PolicyBackend(Protocol):
    """A policy bound to one embodiment, as the node and the evaluator use it."""

    @property
    def requirements(self) -> PolicyRequirements: ...

    def predict_chunk(self, observation: Observation, instruction: str,
                      prefix: np.ndarray | None = None, seed: int | None = None) -> PredictedChunk:
        """One chunk for `observation`. `prefix` (d, K): committed rows, returned unchanged as the
        first rows where `requirements.accepts_prefix` (ignored otherwise: prefix_length 0)."""

    def close(self) -> None:
        """Release what the backend holds (a child process, a device); idempotent."""
