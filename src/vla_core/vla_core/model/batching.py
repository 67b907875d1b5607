"""Observations as the policy's batch tensors: images resized to the encoder's sizes, state
normalised and padded to the unified size, instructions wrapped in the embodiment's text prompt.

Training data loaders (vla_core.data) produce the same dictionary, plus `actions` and
`action_mask`, so training and inference share one path into the network.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from vla_core.embodiment import EmbodimentSpec
from vla_core.model.configuration import PolicyConfig
from vla_core.normalization import EmbodimentNormalizers


@dataclass
class Observation:
    """What the robot sees and feels at one instant (raw units, as sensors give them).

    main_image: (H, W, 3) uint8 RGB, or (k, H, W, 3) for the "history" structure (oldest first).
    state: joint positions in the embodiment's `joint_names` order.
    wrist_images: (h, w, 3) uint8 RGB per wrist camera name.
    """

    main_image: np.ndarray
    state: np.ndarray
    wrist_images: dict[str, np.ndarray] = field(default_factory=dict)


def image_tensor(image: np.ndarray, size: int, what: str) -> torch.Tensor:
    """(..., H, W, 3) uint8 or float in [0, 1] -> (..., 3, size, size) float32."""
    array = np.asarray(image)
    if array.ndim < 3 or array.shape[-1] != 3:
        raise ValueError(f"{what} must be (H, W, 3) RGB, got shape {array.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    tensor = tensor.float() / 255.0 if array.dtype == np.uint8 else tensor.float()
    lead = tensor.shape[:-3]
    tensor = tensor.reshape(-1, *tensor.shape[-3:]).permute(0, 3, 1, 2)
    if tensor.shape[-2:] != (size, size):
        tensor = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return tensor.reshape(*lead, 3, size, size)


def pad_last(tensor: torch.Tensor, size: int) -> torch.Tensor:
    if tensor.shape[-1] > size:
        raise ValueError(f"{tensor.shape[-1]} channels do not fit the unified size {size}")
    return F.pad(tensor, (0, size - tensor.shape[-1]))


def collate_observations(config: PolicyConfig, embodiment: EmbodimentSpec, normalizers: EmbodimentNormalizers,
                         observations: Sequence[Observation], instructions: Sequence[str]) -> dict:
    """The network's input batch for observations of one embodiment."""
    if len(observations) != len(instructions):
        raise ValueError(f"{len(observations)} observations but {len(instructions)} instructions")
    mains, wrists, wrist_valid, states = [], [], [], []
    frames = config.history_length
    wrist_names = [camera.name for camera in embodiment.wrist_cameras][: config.max_wrist_views]
    for observation in observations:
        main = image_tensor(observation.main_image, config.image_size, "main_image")
        if main.dim() == 3:
            main = main[None]
        if main.shape[0] != frames:
            raise ValueError(f"main_image has {main.shape[0]} frames, the policy's structure needs {frames}")
        mains.append(main)
        views = torch.zeros(config.max_wrist_views, 3, config.wrist_image_size, config.wrist_image_size)
        valid = torch.zeros(config.max_wrist_views, dtype=torch.bool)
        unknown = sorted(set(observation.wrist_images) - set(wrist_names))
        if unknown:
            raise ValueError(f"wrist images {unknown} are not wrist cameras of {embodiment.name} ({wrist_names})")
        for slot, name in enumerate(wrist_names):
            if name in observation.wrist_images:
                views[slot] = image_tensor(observation.wrist_images[name], config.wrist_image_size, f"wrist image {name!r}")
                valid[slot] = True
        wrists.append(views)
        wrist_valid.append(valid)
        state = np.asarray(observation.state, dtype=np.float64)
        if state.shape != (embodiment.state_dim,):
            raise ValueError(f"state must have {embodiment.state_dim} values for {embodiment.name} "
                             f"({', '.join(embodiment.joint_names)}), got shape {state.shape}")
        if not np.all(np.isfinite(state)):
            raise ValueError(f"state of {embodiment.name} contains NaN or inf: {state.tolist()}")
        states.append(torch.from_numpy(normalizers.state.normalize(state)).float())
    return {
        "main_images": torch.stack(mains),
        "wrist_images": torch.stack(wrists),
        "wrist_valid": torch.stack(wrist_valid),
        "texts": [embodiment.text_prompt(instruction) for instruction in instructions],
        "state": pad_last(torch.stack(states), config.max_state_dim),
        "embodiments": [embodiment.name] * len(observations),
    }
