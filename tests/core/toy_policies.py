"""Small policies and data for model tests: the real network classes at a size that trains in seconds."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from vla_core.embodiment import EmbodimentSpec
from vla_core.model.configuration import PolicyConfig
from vla_core.model.policy import VLAPolicy

HORIZON = 8


def tiny_config(**overrides) -> PolicyConfig:
    values = dict(hidden_size=32, depth=2, num_heads=2, horizon=HORIZON, max_action_dim=4, max_state_dim=3,
                  num_prompt_tokens=2, time_embedding_dim=16, image_size=16, wrist_image_size=16, vision_width=8,
                  max_wrist_views=1, max_prefix=4, lambda_width=2, max_text_tokens=16)
    values.update(overrides)
    return PolicyConfig(**values)


def toy_embodiment(name: str, joints: int = 2, tag: str = "a toy arm", gripper: bool = False,
                   wrist_cameras: int = 0) -> EmbodimentSpec:
    """A one-arm joint-space robot; with `gripper` its last action channel is the binary gripper."""
    arm = {"name": "arm", "joint_names": [f"j{i}" for i in range(joints)], "ee_frame": "tool"}
    if gripper:
        arm["gripper_joint"] = "finger"
    wrists = [{"name": f"wrist{i}", "topic": f"/wrist{i}", "role": "wrist"} for i in range(wrist_cameras)]
    return EmbodimentSpec.from_dict({
        "name": name, "robot_tag": tag, "robot_model": "unused.urdf", "base_frame": "base", "arms": [arm],
        "control_rate_hz": 10, "chunk_size": HORIZON, "action_space": "joint_abs",
        "cameras": [{"name": "main", "topic": "/main", "role": "main"}, *wrists],
    })


def toy_policy(embodiments: list[EmbodimentSpec], seed: int = 0, **config) -> VLAPolicy:
    torch.manual_seed(seed)
    return VLAPolicy(tiny_config(**config), {spec.name: spec for spec in embodiments})


def batch_for(policy: VLAPolicy, embodiments: list[str], actions: torch.Tensor, texts: list[str] | None = None,
              images: torch.Tensor | None = None) -> dict:
    """A training batch of B samples; `actions` (B, H, K) in normalised units, K <= K_max."""
    config = policy.config
    size, horizon, dim = actions.shape
    unified = torch.zeros(size, horizon, config.max_action_dim)
    unified[..., :dim] = actions
    mask = torch.zeros_like(unified, dtype=torch.bool)
    mask[..., :dim] = True
    return {
        "main_images": images if images is not None else torch.full((size, 1, 3, 16, 16), 0.5),
        "wrist_images": torch.zeros(size, config.max_wrist_views, 3, 16, 16),
        "wrist_valid": torch.zeros(size, config.max_wrist_views, dtype=torch.bool),
        "texts": texts or ["do the task"] * size,
        "state": torch.zeros(size, config.max_state_dim),
        "embodiments": embodiments,
        "actions": unified,
        "action_mask": mask,
    }


def train(policy: VLAPolicy, make_batch: Callable[[torch.Generator], dict], steps: int, lr: float = 3e-3,
          seed: int = 0) -> list[float]:
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=lr)
    policy.train()
    losses = []
    for _ in range(steps):
        loss = policy(make_batch(generator), generator=generator)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    policy.eval()
    return losses


def sample(policy: VLAPolicy, batch: dict, seed: int, **kwargs) -> np.ndarray:
    with torch.inference_mode():
        return policy.sample_actions(batch, generator=torch.Generator().manual_seed(seed), **kwargs).numpy()
