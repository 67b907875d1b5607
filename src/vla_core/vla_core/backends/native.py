"""This project's own `VLAPolicy` as a backend: a thin binding of one loaded model to one profile."""
from __future__ import annotations

import numpy as np

from vla_core.backends.base import CameraNeed, PolicyRequirements
from vla_core.embodiment import EmbodimentSpec, require_trained_profile
from vla_core.model.batching import Observation
from vla_core.model.policy import PredictedChunk, VLAPolicy


class NativeBackend:
    """`VLAPolicy.predict_chunk` for one embodiment; several backends may share one model (one
    checkpoint trained for several robots is loaded once)."""

    def __init__(self, policy: VLAPolicy, spec: EmbodimentSpec, checkpoint: str) -> None:
        require_trained_profile(checkpoint, policy.embodiments, spec)
        self.policy, self.spec = policy, spec
        config = policy.config
        self._requirements = PolicyRequirements(
            backend="native",
            # the model resizes any image itself: the profile's size is what the cameras give
            cameras=tuple(CameraNeed(c.name, c.height, c.width) for c in spec.cameras),
            state_features=spec.joint_names, action_features=spec.channel_names,
            chunk_length=spec.chunk_size, action_space=spec.action_space, takes_language=True,
            accepts_prefix=config.max_prefix > 0, joint_velocity=bool(config.state_velocity),
            tool_poses=config.tool_pose_arms > 0, object_pose=config.privileged_object_pose)

    @property
    def requirements(self) -> PolicyRequirements:
        return self._requirements

    def predict_chunk(self, observation: Observation, instruction: str,
                      prefix: np.ndarray | None = None, seed: int | None = None) -> PredictedChunk:
        return self.policy.predict_chunk(observation, instruction, self.spec.name, prefix, seed)

    def close(self) -> None:
        """The model is garbage-collected with the backend: nothing else to release."""


def load_native(directory: str, specs: list[EmbodimentSpec], device: str = "cpu", compile: bool = False,
                cuda_graphs: bool = False) -> dict[str, NativeBackend]:
    """One model from `directory`, bound to each profile (refused unless trained for it)."""
    policy = VLAPolicy.from_pretrained(directory, device=device)
    policy.optimize_for_inference(compile, cuda_graphs)
    return {spec.name: NativeBackend(policy, spec, directory) for spec in specs}
