"""Named PolicyConfig sizes: the default is sized for a CPU; these match published models.

A preset only fixes the sizes that define the model's cost (width, depth, horizon, views); it
starts from the default configuration, so everything else (flow steps, prefix length, the
built-in encoder) stays as documented in configuration.py. Weights are not part of a preset:
`VLAPolicy(preset_config(name), ...)` builds random weights, which is what timing needs.
"""
from __future__ import annotations

from typing import Any

from vla_core.model.configuration import PolicyConfig

PRESETS: dict[str, dict[str, Any]] = {
    # X-VLA-0.9B's action transformer: 24 blocks of width 1024, chunks of 30 actions, one main
    # view and one wrist view at 224x224 (X-VLA's vision-language stream is Florence-2; this
    # preset keeps vla_ros's built-in encoder at that width, so it times the expert at full size)
    "xvla-0.9b": {"hidden_size": 1024, "depth": 24, "num_heads": 16, "horizon": 30, "image_size": 224,
                  "wrist_image_size": 224, "max_wrist_views": 1, "vision_width": 128},
}


def preset_config(name: str, **overrides: Any) -> PolicyConfig:
    """The PolicyConfig of preset `name`, with `overrides` (any PolicyConfig field) applied last."""
    if name not in PRESETS:
        raise KeyError(f"unknown policy preset {name!r}; known presets: {sorted(PRESETS)}")
    return PolicyConfig(**{**PRESETS[name], **overrides})
