"""What a chunk is predicted from, written once for the policy node and `vla eval`: the model's
observation at the chunk start, and the committed prefix re-expressed relative to it.

The policy node assembles the streams from ROS topics and the evaluation renders them from the
simulation; from there on both call these, so the model sees in evaluation exactly what it
sees on the robot.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vla_core.embodiment import EmbodimentSpec
from vla_core.model.batching import Observation
from vla_core.runtime.decoding import ChunkDecoder, ChunkStart


def policy_observation(spec: EmbodimentSpec, decoder: ChunkDecoder, images: Mapping[str, np.ndarray],
                       start: ChunkStart, joint_velocity: np.ndarray | None) -> Observation:
    """The observation at `start` (its joints) with each camera's image by name; the tool poses
    the model reads are the chunk start's, the frame the chunk's actions are relative to."""
    return Observation(images[spec.main_camera.name], start.joints,
                       {camera.name: images[camera.name] for camera in spec.wrist_cameras},
                       tool_poses=decoder.tool_poses(start), joint_velocity=joint_velocity)


def committed_prefix(decoder: ChunkDecoder, source_rows: np.ndarray, source: ChunkStart, first: int,
                     committed: np.ndarray, start: ChunkStart) -> np.ndarray:
    """The `committed` action rows, which follow row `first - 1` of a chunk predicted at `source`
    (`source_rows`, its rows as predicted), re-expressed relative to the new chunk's `start`.
    The rows before `first` anchor delta spaces, whose rows chain from their predecessor."""
    return decoder.reexpress(np.vstack([source_rows[:first], committed]), first, source, start)
