"""Write a tiny untrained LeRobot ACT policy directory, made and saved by LeRobot's own classes
with its pre- and post-processors and their normalisation statistics: what the LeRobot backend's
tests and benchmark serve without training one.

Runs with the LeRobot environment's Python (scripts/lerobot_check.sh builds it), never the
project's: `python scripts/make_tiny_lerobot_act.py DIR`. One 64x64 `front` camera and a 6-value
state and action, so it maps onto the SO-101 profile.
"""
from __future__ import annotations

import sys

from tiny_lerobot import save_policy, so101_features


def main(directory: str) -> None:
    import torch
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy

    inputs, outputs = so101_features()
    config = ACTConfig(input_features=inputs, output_features=outputs,
                       chunk_size=20, n_action_steps=20, dim_model=32, n_heads=2, dim_feedforward=64,
                       n_encoder_layers=1, n_decoder_layers=1, use_vae=False, pretrained_backbone_weights=None,
                       device="cpu")
    stats = {"observation.state": {"mean": torch.zeros(6), "std": torch.ones(6)},
             "action": {"mean": torch.full((6,), 0.1), "std": torch.full((6,), 0.2)},
             "observation.images.front": {"mean": torch.full((3, 1, 1), 0.5), "std": torch.full((3, 1, 1), 0.2)}}
    save_policy(ACTPolicy, config, directory, stats)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_tiny_lerobot_act.py DIR")
    main(sys.argv[1])
