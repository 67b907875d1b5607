"""Synthetic demonstrations of the shipped robots (so forward kinematics is real) for training tests.

Joints follow smooth sines inside the robot model's limits, the action is the next frame's
state (what a teleoperated follower records), grippers close for the middle third of the
episode, and the images are small patterns whose colour follows the arm, so there is something
to learn.
"""
from __future__ import annotations

import numpy as np
from vla_core.data.episode import Episode
from vla_core.embodiment import load_embodiment
from vla_core.kinematics import RobotKinematics
from vla_core.model.configuration import PolicyConfig

IMAGE = 24  # pixels of the synthetic cameras


def synthetic_episode(embodiment: str, length: int, seed: int, task: str = "pick up the cube",
                      image: int = IMAGE) -> Episode:
    spec = load_embodiment(embodiment)
    kinematics = RobotKinematics(spec)
    lower, upper = kinematics.position_limits()
    middle, half = (lower + upper) / 2, (upper - lower) / 2
    rng = np.random.default_rng(seed)
    phase, speed = rng.uniform(0, 2 * np.pi, spec.state_dim), rng.uniform(0.5, 1.5, spec.state_dim)
    time = np.arange(length + 1) / spec.control_rate_hz
    joints = middle + 0.4 * half * np.sin(speed * 2 * np.pi * time[:, None] / 2 + phase)
    index = {name: i for i, name in enumerate(spec.joint_names)}
    closing = (np.arange(length + 1) > length // 3) & (np.arange(length + 1) < 2 * length // 3)
    for arm in spec.arms:
        opened, closed = kinematics.gripper_positions(arm)
        joints[:, index[arm.gripper_joint]] = np.where(closing, closed, opened)
    images = {}
    for c, camera in enumerate(spec.cameras):
        level = ((joints[:length, c % spec.state_dim] - lower[c % spec.state_dim])
                 / (upper[c % spec.state_dim] - lower[c % spec.state_dim]) * 255).astype(np.uint8)
        frames = np.zeros((length, image, image, 3), np.uint8)
        frames[:, :, :, 0] = level[:, None, None]
        frames[:, ::4, :, 1] = 255 - level[:, None, None]
        frames[:, :, :, 2] = rng.integers(0, 40, (length, image, image), dtype=np.uint8)
        images[camera.name] = frames
    return Episode(name=f"{embodiment}_{seed}", embodiment=spec.name, task=task, fps=spec.control_rate_hz,
                   timestamps=time[:length], state=joints[:length], action=joints[1:], images=images)


def tiny_policy_settings(**overrides) -> dict:
    """PolicyConfig fields of a policy that trains in milliseconds per step (ALOHA's 20 channels fit)."""
    settings = {"hidden_size": 32, "depth": 2, "num_heads": 2, "horizon": 16, "max_action_dim": 20, "max_state_dim": 14,
                    "num_prompt_tokens": 2, "time_embedding_dim": 16, "image_size": 16, "wrist_image_size": 16,
                    "vision_width": 8, "max_wrist_views": 2, "max_prefix": 4, "lambda_width": 2, "max_text_tokens": 16}
    settings.update(overrides)
    PolicyConfig(**settings)  # fail here, not inside a training run
    return settings
