"""vla_msgs/ActionChunk <-> arrays, with every inconsistency refused by field name.

A chunk travels as a flat row-major `data` field; receivers must not trust that its length,
`horizon`, `dims` and the name lists agree, nor that the numbers are finite.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion

from vla_msgs.msg import ActionChunk

from .ros_time import duration_to_seconds, seconds_to_duration, seconds_to_stamp, stamp_to_seconds


class ChunkMessageError(ValueError):
    """An ActionChunk whose fields do not agree, or that carries NaN/inf; the message names the field."""


@dataclass(frozen=True)
class ReceivedChunk:
    """A validated chunk: (H, K) actions and what is needed to decode them."""

    chunk_id: int
    stamp: float  # the observation's stamp, seconds
    frame_id: str
    embodiment: str
    action_space: str
    channel_names: tuple[str, ...]
    target_names: tuple[str, ...]
    dt: float
    actions: np.ndarray  # (H, K) float64
    start_poses: np.ndarray  # (arms, 7): x, y, z, qx, qy, qz, qw (ROS order); (0, 7) for joint spaces
    start_positions: np.ndarray  # (joints,); empty for end-effector spaces
    prefix_length: int
    inference_latency: float


def pose_to_array(pose: Pose) -> np.ndarray:
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w], dtype=np.float64)


def array_to_pose(values: Sequence[float]) -> Pose:
    x, y, z, qx, qy, qz, qw = (float(v) for v in values)
    return Pose(position=Point(x=x, y=y, z=z), orientation=Quaternion(x=qx, y=qy, z=qz, w=qw))


def chunk_to_message(chunk_id: int, actions: np.ndarray, *, stamp: float, frame_id: str, embodiment: str,
                     action_space: str, channel_names: Sequence[str], target_names: Sequence[str], dt: float,
                     start_poses: np.ndarray, start_positions: np.ndarray, prefix_length: int,
                     inference_latency: float) -> ActionChunk:
    """An ActionChunk from a chunk's (H, K) actions; `start_poses` are (arms, 7) in ROS order."""
    actions = np.asarray(actions, dtype=np.float64)
    msg = ActionChunk(chunk_id=chunk_id, embodiment=embodiment, action_space=action_space,
                      channel_names=list(channel_names), target_names=list(target_names),
                      horizon=actions.shape[0], dims=actions.shape[1], dt=seconds_to_duration(dt),
                      data=actions.reshape(-1).tolist(), chunk_start_poses=[array_to_pose(p) for p in start_poses],
                      chunk_start_positions=np.asarray(start_positions, dtype=np.float64).tolist(),
                      prefix_length=prefix_length, inference_latency=float(inference_latency))
    msg.header.stamp = seconds_to_stamp(stamp)
    msg.header.frame_id = frame_id
    return msg


def chunk_from_message(msg: ActionChunk) -> ReceivedChunk:
    horizon, dims = int(msg.horizon), int(msg.dims)
    if horizon < 1 or dims < 1:
        raise ChunkMessageError(f"chunk {msg.chunk_id}: horizon and dims must be >= 1, got {horizon} and {dims}")
    data = np.asarray(msg.data, dtype=np.float64)
    if data.size != horizon * dims:
        raise ChunkMessageError(
            f"chunk {msg.chunk_id}: data has {data.size} values, expected horizon x dims = {horizon} x {dims}"
        )
    if len(msg.channel_names) != dims:
        raise ChunkMessageError(
            f"chunk {msg.chunk_id}: channel_names has {len(msg.channel_names)} names, expected dims = {dims}"
        )
    if not np.all(np.isfinite(data)):
        raise ChunkMessageError(f"chunk {msg.chunk_id}: data contains NaN or inf")
    dt = duration_to_seconds(msg.dt)
    if dt <= 0:
        raise ChunkMessageError(f"chunk {msg.chunk_id}: dt must be > 0, got {dt}")
    if not 0 <= msg.prefix_length <= horizon:
        raise ChunkMessageError(f"chunk {msg.chunk_id}: prefix_length {msg.prefix_length} is not in 0..{horizon}")
    poses = np.array([pose_to_array(p) for p in msg.chunk_start_poses], dtype=np.float64).reshape(-1, 7)
    positions = np.asarray(msg.chunk_start_positions, dtype=np.float64)
    if not (np.all(np.isfinite(poses)) and np.all(np.isfinite(positions))):
        raise ChunkMessageError(f"chunk {msg.chunk_id}: chunk_start_poses or chunk_start_positions contain NaN or inf")
    return ReceivedChunk(
        chunk_id=int(msg.chunk_id),
        stamp=stamp_to_seconds(msg.header.stamp),
        frame_id=msg.header.frame_id,
        embodiment=msg.embodiment,
        action_space=msg.action_space,
        channel_names=tuple(msg.channel_names),
        target_names=tuple(msg.target_names),
        dt=dt,
        actions=data.reshape(horizon, dims),
        start_poses=poses,
        start_positions=positions,
        prefix_length=int(msg.prefix_length),
        inference_latency=float(msg.inference_latency),
    )
