"""What the tiny LeRobot policy scripts (make_tiny_lerobot_{act,smolvla,xvla}.py) share: the
SO-101-shaped features (one 64x64 `front` camera, a 6-value state and action) and saving a policy
with LeRobot's own pre- and post-processors and their normalisation statistics, as
`lerobot-train` saves one. Imported by those scripts, with the LeRobot environment's Python."""
from __future__ import annotations

from typing import Any


def so101_features() -> tuple[dict[str, Any], dict[str, Any]]:
    """(input_features, output_features) that map onto the SO-101 profile."""
    from lerobot.configs.types import FeatureType, PolicyFeature

    inputs = {"observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, 64, 64)),
              "observation.state": PolicyFeature(FeatureType.STATE, (6,))}
    return inputs, {"action": PolicyFeature(FeatureType.ACTION, (6,))}


def unit_statistics() -> dict[str, dict[str, Any]]:
    """Mean 0, std 1 for the state and the action: normalisation that leaves values as they are."""
    import torch

    return {key: {"mean": torch.zeros(6), "std": torch.ones(6)} for key in ("observation.state", "action")}


def save_policy(policy_class: type, config: Any, directory: str, statistics: dict[str, dict[str, Any]]) -> None:
    """The policy (seeded weights) and its processors, saved into `directory`."""
    import torch
    from lerobot.policies.factory import make_pre_post_processors

    torch.manual_seed(0)
    policy = policy_class(config)
    pre, post = make_pre_post_processors(config, dataset_stats=statistics)
    for saved in (policy, pre, post):
        saved.save_pretrained(directory)
