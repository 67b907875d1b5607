"""Rendered keypoint supervision: simulated main views labelled with the named cube's image position.

Why rendered scenes and not the demonstrations' own frames: a policy's keypoint 0 supervised on
the pre-grasp frames of about 360 demonstrations fit them and memorised them; on new placements
it was no closer to the named cube than the placements' mean. The simulation renders thousands
of placements in minutes, each with its exact label, and needs no demonstration.

Each sample is a seeded scene (the cubes as `TabletopScene.reset(seed)` places them), a task that
names one cube in its training wording (`pick_cube` or `cube_in_bin`, drawn per sample, with the
bin when the task has one), and the robot in a random pose around its home, so the arm appears
over the table as it does in the demonstrations; a pose that hides the named cube from the main
camera is drawn again. Views are rendered at the main camera's resolution, go through the video
codec the datasets are written with (vla_core.data.episode_encoding: libx264, yuv420p) and are
resized to the policy's size as the dataset loader resizes them, so the views the keypoints learn
on look like the views the policy is trained and run on.
"""
from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vla_core.data.video import VideoEncoder, decode_frames
from vla_core.embodiment import EmbodimentSpec
from vla_core.images import resize_rgb
from vla_core.sim.factory import make_scene
from vla_core.sim.tasks import TASKS, sample_task

POSE_ATTEMPTS = 5  # random poses tried before the home pose is used (it hides no cube)


@dataclass
class KeypointSet:
    """Main views (N, 3, S, S) uint8, their instructions (in the embodiment's text prompt) and the
    named cube's image position (N, 2) in [-1, 1] (x right, y down; vla_core.model.keypoints)."""

    images: torch.Tensor
    texts: list[str]
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.texts)

    def sample(self, generator: torch.Generator, count: int) -> tuple[torch.Tensor, list[str], torch.Tensor]:
        """`count` samples drawn with replacement: float images in [0, 1], texts, targets."""
        rows = torch.randint(0, len(self), (count,), generator=generator)
        return self.images[rows].float() / 255.0, [self.texts[i] for i in rows.tolist()], self.targets[rows]

    def head(self, count: int) -> tuple[torch.Tensor, list[str], torch.Tensor]:
        """The first `count` samples (a fixed validation set), as `sample` returns them."""
        return self.images[:count].float() / 255.0, self.texts[:count], self.targets[:count]

    @staticmethod
    def concat(sets: Sequence[KeypointSet]) -> KeypointSet:
        return KeypointSet(torch.cat([s.images for s in sets]), [t for s in sets for t in s.texts],
                           torch.cat([s.targets for s in sets]))


def _random_pose(home: np.ndarray, ranges: np.ndarray, rng: np.random.Generator, arm_noise: float) -> np.ndarray:
    return np.clip(home + rng.normal(0.0, arm_noise, home.shape), ranges[:, 0], ranges[:, 1])


def _through_codec(frames: np.ndarray, fps: float, size: int) -> np.ndarray:
    """(N, H, W, 3) frames encoded and decoded as the datasets' videos are, resized to size x size."""
    with tempfile.TemporaryDirectory(prefix="vla_keypoints_") as directory:
        path = Path(directory) / "views.mp4"
        encoder = VideoEncoder(path, fps, frames.shape[2], frames.shape[1])
        try:
            encoder.write(frames)
        finally:
            encoder.close()
        return np.stack([image for _, image in decode_frames(path, lambda image: resize_rgb(image, size, size))])


def render_keypoint_set(spec: EmbodimentSpec, count: int, seed: int, image_size: int,
                        arm_noise: float = 0.4) -> KeypointSet:
    """`count` labelled main views of `spec`'s simulated scene; sample i uses scene seed `seed + i`."""
    camera = spec.main_camera
    scenes = {name: make_scene(spec.name, name, image_size=camera.width) for name in TASKS}
    task_names = sorted(TASKS)
    frames, texts, targets = [], [], []
    try:
        for index in range(count):
            episode_seed = seed + index
            rng = np.random.default_rng([episode_seed, 2])
            task_name = task_names[int(rng.integers(len(task_names)))]
            scene = scenes[task_name]
            scene.reset(episode_seed)
            task = sample_task(task_name, episode_seed, scene.colours)
            for _ in range(POSE_ATTEMPTS):
                scene.place_robot(_random_pose(scene.home, scene.joint_ranges(), rng, arm_noise))
                if scene.cube_visible(camera.name, task.colour):
                    break
            else:
                scene.place_robot(scene.home)
            frames.append(scene.render(camera.name))
            texts.append(spec.text_prompt(task.instruction("training")))
            targets.append(scene.image_position(camera.name, scene.cube(task.colour).position))
    finally:
        for scene in scenes.values():
            scene.close()
    images = _through_codec(np.stack(frames), spec.control_rate_hz, image_size)
    return KeypointSet(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), texts,
                       torch.tensor(np.stack(targets), dtype=torch.float32))
