"""One demonstration in memory: the contract between whatever produces demonstrations (the
rosbag2 converter, the simulation collector) and whatever consumes them (the LeRobot v3.0
writer, the training sample builder).

Actions are stored as absolute joint targets, not in a chunk representation: the chunk-relative
spaces (`eef_relative`, `eef_delta`, ...) depend on where a training chunk starts, which only
the sample builder knows. It derives them with forward kinematics from `action` and `state`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from vla_core.embodiment import EmbodimentSpec


class EpisodeError(ValueError):
    """An episode whose arrays disagree; the message names the episode and the field."""


@dataclass
class Episode:
    """T frames of one demonstration on a fixed-rate timeline.

    timestamps: (T,) seconds from the episode's first frame, increasing, about 1 / fps apart.
    state: (T, J) measured joint positions in the embodiment's `joint_names` order.
    action: (T, J) commanded absolute joint targets in the same order (the teleoperator's
        command at that frame, or the next frame's state where no command was recorded).
    images: camera name (the profile's) -> (T, H, W, 3) uint8 RGB.
    """

    name: str
    embodiment: str
    task: str
    fps: float
    timestamps: np.ndarray
    state: np.ndarray
    action: np.ndarray
    images: Mapping[str, np.ndarray] = field(default_factory=dict)
    success: bool | None = None
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.timestamps)

    def validate(self, spec: EmbodimentSpec, images: bool = True) -> None:
        """Raise EpisodeError naming the first field that does not fit `spec` or the other fields
        (`images=False`: all but the images, for an episode whose frames are encoded as they are read)."""
        def fail(what: str) -> EpisodeError:
            return EpisodeError(f"episode {self.name!r}: {what}")

        count = len(self.timestamps)
        if count < 1:
            raise fail("has no frames")
        if self.embodiment != spec.name:
            raise fail(f"is of embodiment {self.embodiment!r}, expected {spec.name!r}")
        if self.fps <= 0:
            raise fail(f"fps must be > 0, got {self.fps}")
        if np.any(np.diff(self.timestamps) <= 0):
            raise fail("timestamps must increase strictly")
        for name in ("state", "action"):
            array = getattr(self, name)
            if array.shape != (count, spec.state_dim):
                raise fail(f"{name} must be ({count}, {spec.state_dim}) for joints {list(spec.joint_names)}, "
                           f"got {array.shape}")
            if not np.all(np.isfinite(array)):
                raise fail(f"{name} contains NaN or inf")
        if not images:
            return
        expected = {camera.name for camera in spec.cameras}
        if set(self.images) != expected:
            raise fail(f"has cameras {sorted(self.images)}, the profile names {sorted(expected)}")
        for camera, frames in self.images.items():
            if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] != count or frames.shape[-1] != 3:
                raise fail(f"camera {camera!r} must be ({count}, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
