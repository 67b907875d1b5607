"""Rendered keypoint supervision: simulated main views labelled with the named cube's image position.

Why rendered scenes and not the demonstrations' own frames: a policy's keypoint 0 supervised on
the pre-grasp frames of about 360 demonstrations fit them and memorised them; on new placements
it was no closer to the named cube than the placements' mean. The simulation renders thousands
of placements in minutes, each with its exact label, and needs no demonstration.

Each sample is a seeded scene (the cubes as `TabletopScene.reset(seed)` places them), a task that
names one cube in its training wording (`pick_cube` or `cube_in_bin`, drawn per sample, with the
bin when the task has one), and the robot in one of two kinds of pose:
- a random pose around its home, so the arm appears over the table as it does in the
  demonstrations; a pose that hides the named cube from the main camera is drawn again;
- with probability `plan_share`, a row of the scripted teleoperator's plan for this scene, from
  home up to the moment its jaws start to close: the arm reaching for, hovering over and
  straddling the named cube. Why: a policy's keypoints are read most when the arm is at the cube,
  and keypoints that only ever saw the arm far from it slid towards the arm there (measured: 0.1
  to 0.15 half-widths off, against 0.01 with the arm away), so the arm chased a moving target.

Labels: point 0 is the named cube; with `tools`, point 1 + i is arm i's tool (the point its
jaws close on), NaN when it is out of the view. Cube and tool in the same image tell the policy
where its gripper is relative to the cube without having to learn the arm's kinematics from
joint angles. Views are rendered at the main camera's resolution, go through the video
codec the datasets are written with (vla_core.data.episode_encoding: libx264, yuv420p) and are
resized to the policy's size as the dataset loader resizes them, so the views the keypoints learn
on look like the views the policy is trained and run on.
"""
from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vla_core.data.video import VideoEncoder, decode_frames
from vla_core.embodiment import EmbodimentSpec
from vla_core.images import resize_rgb
from vla_core.sim.factory import make_scene, make_teleop
from vla_core.sim.rollout import plan_task
from vla_core.sim.scene import TabletopScene
from vla_core.sim.tasks import TASKS, CubeTask, sample_task
from vla_core.sim.teleop import ScriptedTeleop, UnreachableCube

POSE_ATTEMPTS = 5  # random poses tried before the home pose is used (it hides no cube)


@dataclass
class KeypointSet:
    """Main views (N, 3, S, S) uint8, their instructions (in the embodiment's text prompt) and the
    labelled image positions (N, P, 2) in [-1, 1] (x right, y down; vla_core.model.keypoints):
    point 0 the named cube, then each arm's tool when labelled; NaN where a point has no label."""

    images: torch.Tensor
    texts: list[str]
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.texts)

    def sample(self, generator: torch.Generator, count: int) -> tuple[torch.Tensor, list[str], torch.Tensor]:
        """`count` samples drawn with replacement: float images in [0, 1], texts, targets."""
        rows = self.draw_rows(generator, count)
        return self.images[rows].float() / 255.0, [self.texts[i] for i in rows.tolist()], self.targets[rows]

    def draw_rows(self, generator: torch.Generator, count: int) -> torch.Tensor:
        """The rows `sample` takes: `count` indices drawn with replacement from `generator`."""
        return torch.randint(0, len(self), (count,), generator=generator)

    def head(self, count: int) -> tuple[torch.Tensor, list[str], torch.Tensor]:
        """The first `count` samples (a fixed validation set), as `sample` returns them."""
        return self.images[:count].float() / 255.0, self.texts[:count], self.targets[:count]

    @staticmethod
    def concat(sets: Sequence[KeypointSet]) -> KeypointSet:
        points = max(s.targets.shape[1] for s in sets)
        targets = [torch.cat([s.targets, torch.full((len(s), points - s.targets.shape[1], 2), math.nan)], dim=1)
                   for s in sets]  # a robot with fewer arms has no label for the other tools
        return KeypointSet(torch.cat([s.images for s in sets]), [t for s in sets for t in s.texts],
                           torch.cat(targets))


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


def _reaching_pose(scene: TabletopScene, task: CubeTask, teleop: ScriptedTeleop,
                   rng: np.random.Generator) -> np.ndarray | None:
    """A random row of the teleoperator's approach from home (reaching, hovering, straddling the
    cube, before the jaws start to close); None when the cube cannot be picked."""
    scene.place_robot(scene.home)
    try:
        plan = plan_task(scene, task, teleop, rng)
    except UnreachableCube:
        return None
    return plan.joints[int(rng.integers(plan.approach_rows))]


def _tool_labels(scene: TabletopScene, teleop: ScriptedTeleop, spec: EmbodimentSpec, joints: np.ndarray,
                 camera: str) -> list[np.ndarray]:
    """Each arm's tool in the image, NaN when out of view (beside it, or behind the camera: a
    random pose can raise an arm above the ALOHA's top camera)."""
    labels = []
    for arm in range(len(spec.arms)):
        try:
            position = scene.image_position(camera, teleop.tool_position(arm, joints))
        except ValueError:  # behind the camera
            position = None
        in_view = position is not None and np.all(np.abs(position) <= 1)
        labels.append(position if in_view else np.full(2, np.nan))
    return labels


def render_keypoint_set(spec: EmbodimentSpec, count: int, seed: int, image_size: int,
                        arm_noise: float = 0.4, plan_share: float = 0.0, tools: bool = False) -> KeypointSet:
    """`count` labelled main views of `spec`'s simulated scene; sample i uses scene seed `seed + i`.
    `plan_share`: the share of views with the arm at a row of the teleoperator's plan; `tools`:
    label each arm's tool too (see the module docstring)."""
    if not 0.0 <= plan_share <= 1.0:
        raise ValueError(f"plan_share is a probability in [0, 1], got {plan_share}")
    camera = spec.main_camera
    scenes = {name: make_scene(spec.name, name, image_size=camera.width) for name in TASKS}
    teleop = make_teleop(spec) if plan_share > 0 or tools else None
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
            reaching = (_reaching_pose(scene, task, teleop, rng)
                        if plan_share > 0 and rng.random() < plan_share else None)
            if reaching is not None:
                scene.place_robot(reaching)
            else:
                for _ in range(POSE_ATTEMPTS):
                    scene.place_robot(_random_pose(scene.home, scene.joint_ranges(), rng, arm_noise))
                    if scene.cube_visible(camera.name, task.colour):
                        break
                else:
                    scene.place_robot(scene.home)
            frames.append(scene.render(camera.name))
            texts.append(spec.text_prompt(task.instruction("training")))
            points = [scene.image_position(camera.name, scene.cube(task.colour).position)]
            if tools:
                points += _tool_labels(scene, teleop, spec, scene.joint_positions(), camera.name)
            targets.append(np.stack(points))
    finally:
        for scene in scenes.values():
            scene.close()
    images = _through_codec(np.stack(frames), spec.control_rate_hz, image_size)
    return KeypointSet(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), texts,
                       torch.tensor(np.stack(targets), dtype=torch.float32))
