"""From an Episode frame to one training sample in the network's batch format.

A sample is the chunk that starts at frame t: the observation at t (main view, wrist views,
joint state) and the targets `action[t : t + H]`, written in the embodiment's action space
relative to the chunk start, exactly as the runtime decodes them (vla_core.runtime.decoding):
pose spaces from forward kinematics of the joint targets and of the state at t, joint spaces
from the joints, and the gripper channel 1 (closed) where the gripper joint's target lies
nearer the closed than the open position (decoding maps 1 back to the closed position).
Steps past the episode's end repeat its last target and are masked out of the loss.

Forward kinematics is computed once per episode (`EpisodeChunks`), not once per sample: a
chunk then costs one `encode_chunk` on precomputed poses.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vla_core.actions import (
    ArmState,
    ArmTrajectory,
    encode_chunk,
    get_action_space,
    to_unified,
)
from vla_core.data.episode import Episode
from vla_core.embodiment import EmbodimentSpec
from vla_core.kinematics import RobotKinematics
from vla_core.model.batching import Observation, backward_velocity, collate_observations
from vla_core.model.configuration import PolicyConfig
from vla_core.normalization import EmbodimentNormalizers, Normalizer


@dataclass
class EpisodeChunks:
    """One episode with its per-frame end-effector poses and binary gripper targets precomputed."""

    episode: Episode
    spec: EmbodimentSpec  # the profile; its name is the soft prompt the samples train
    arm_columns: list[list[int]]  # per arm: its joint columns in the state / action arrays
    state_poses: list[np.ndarray]  # per arm (T, 4, 4): pose spaces and the policy's tool poses read them
    action_poses: list[np.ndarray] | None  # per arm (T, 4, 4), pose spaces only
    gripper: np.ndarray | None  # (T, arms) 0 open / 1 closed, from the gripper joint targets
    # (T, 4) the named object's true pose per frame, for privileged_object_pose policies only
    # (vla_core.sim.replay: simulated demonstrations replayed from their seeds)
    object_poses: np.ndarray | None = None

    @classmethod
    def build(cls, episode: Episode, spec: EmbodimentSpec, kinematics: RobotKinematics) -> EpisodeChunks:
        index = {name: i for i, name in enumerate(spec.joint_names)}
        columns = [[index[name] for name in arm.joint_names] for arm in spec.arms]
        state_poses = _poses(kinematics, episode.state, len(spec.arms))
        action_poses = None
        if get_action_space(spec.action_space).uses_poses:
            action_poses = _poses(kinematics, episode.action, len(spec.arms))
        gripper = None
        if spec.has_gripper:
            flags = []
            for arm in spec.arms:
                opened, closed = kinematics.gripper_positions(arm)
                if opened == closed:
                    raise ValueError(f"{spec.name}: arm {arm.name!r} has the same open and closed gripper position")
                fraction = (episode.action[:, index[arm.gripper_joint]] - opened) / (closed - opened)
                flags.append((fraction > 0.5).astype(np.float64))
            gripper = np.stack(flags, axis=1)
        return cls(episode, spec, columns, state_poses, action_poses, gripper)

    def __len__(self) -> int:
        return len(self.episode)

    def chunk(self, start: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """(H, K) rows in the action space for the chunk starting at `start`, and (H,) validity."""
        if not 0 <= start < len(self):
            raise IndexError(f"episode {self.episode.name!r} has {len(self)} frames, no chunk starts at {start}")
        steps = np.arange(start, start + horizon)
        valid = steps < len(self)
        steps = np.minimum(steps, len(self) - 1)
        trajectories, starts = [], []
        for arm, columns in enumerate(self.arm_columns):
            trajectories.append(ArmTrajectory(
                poses=None if self.action_poses is None else self.action_poses[arm][steps],
                joints=self.episode.action[np.ix_(steps, columns)],
                gripper=None if self.gripper is None else self.gripper[steps, arm]))
            starts.append(ArmState(pose=None if self.action_poses is None else self.state_poses[arm][start],
                                   joints=self.episode.state[start, columns]))
        return encode_chunk(self.spec.action_space, trajectories, starts, self.spec.has_gripper), valid

    def observation(self, frame: int, history_length: int = 1) -> Observation:
        """The observation at `frame`; the history repeats the first frame before the episode's
        start, and the joints are still at it (the recorded state one frame back, as the runtime
        measures velocity over one control period)."""
        images = self.episode.images
        main, past, wrists = None, [], {}
        if images:  # an episode loaded without frames serves policies that read none (privileged_object_pose)
            main = images[self.spec.main_camera.name]
            past = [main[max(frame - back, 0)] for back in range(history_length - 1, 0, -1)]
            wrists = {camera.name: images[camera.name][frame] for camera in self.spec.wrist_cameras}
            main = main[frame]
        states = self.episode.state
        velocity = backward_velocity(states[frame], states[max(frame - 1, 0)], 1.0 / self.episode.fps)
        return Observation(main_image=main, state=states[frame], wrist_images=wrists, history=past,
                           tool_poses=[poses[frame] for poses in self.state_poses], joint_velocity=velocity,
                           object_pose=None if self.object_poses is None else self.object_poses[frame])


def _poses(kinematics: RobotKinematics, joints: np.ndarray, arms: int) -> list[np.ndarray]:
    per_frame = [kinematics.forward(row) for row in joints]
    return [np.stack([frame[arm] for frame in per_frame]) for arm in range(arms)]


def fit_normalizers(chunks: Sequence[EpisodeChunks], horizon: int, max_chunks: int) -> EmbodimentNormalizers:
    """Quantile statistics of one embodiment's chunks and states (RoboVLMs); gripper channels pass
    through, as the BCE head and the decoder read them as 0 / 1. At most `max_chunks` chunk starts,
    evenly spread over all frames, so the fit stays cheap on large datasets."""
    if not chunks:
        raise ValueError("no episodes to fit normalisation statistics on")
    spec = chunks[0].spec
    starts = [(i, t) for i, episode in enumerate(chunks) for t in range(len(episode))]
    if len(starts) > max_chunks:
        starts = [starts[i] for i in np.linspace(0, len(starts) - 1, max_chunks).round().astype(int)]
    rows, masks = [], []
    for i, t in starts:
        values, valid = chunks[i].chunk(t, horizon)
        rows.append(values)
        masks.append(np.broadcast_to(valid[:, None], values.shape))
    passthrough = [k in spec.gripper_channels for k in range(spec.action_dim)]
    action = Normalizer.fit(np.concatenate(rows), "quantile", np.concatenate(masks), passthrough)
    state = Normalizer.fit(np.concatenate([c.episode.state for c in chunks]), "quantile")
    return EmbodimentNormalizers(action, state)


def sample_batch(config: PolicyConfig, chunks: EpisodeChunks, frame: int,
                 normalizers: EmbodimentNormalizers) -> dict:
    """The batch dict (B = 1) `VLAPolicy.forward` takes for the chunk starting at `frame`."""
    batch = collate_observations(config, chunks.spec, normalizers,
                                 [chunks.observation(frame, config.history_length)], [chunks.episode.task])
    actions, mask = chunk_targets(config, chunks, frame, normalizers)
    batch["actions"] = torch.from_numpy(actions)[None]
    batch["action_mask"] = torch.from_numpy(mask)[None]
    return batch


def chunk_targets(config: PolicyConfig, chunks: EpisodeChunks, frame: int,
                  normalizers: EmbodimentNormalizers) -> tuple[np.ndarray, np.ndarray]:
    """The chunk starting at `frame` as the loss reads it: normalised rows in the unified tensor
    (H, K_max) float32, and its (H, K_max) mask of real channels on steps inside the episode."""
    rows, valid = chunks.chunk(frame, config.horizon)
    unified, mask = to_unified(normalizers.action.normalize(rows), config.max_action_dim)
    return unified.astype(np.float32), mask & valid[:, None]


def merge_batches(batches: Sequence[Mapping]) -> dict:
    """Concatenate batch dicts along the sample axis (tensors) or the list (texts, embodiment names)."""
    if not batches:
        raise ValueError("no samples to merge into a batch")
    merged = {}
    for key, first in batches[0].items():
        values = [batch[key] for batch in batches]
        merged[key] = torch.cat(values) if isinstance(first, torch.Tensor) else [v for value in values for v in value]
    return merged
