"""Where does grounding get lost? Linear probes of a checkpoint's main-view features.

`probe_grounding` shows that the first chunk does not follow the named cube. This script asks
whether the cube's position is in the features the action expert reads. Over N placements
(vla_core.seeds.FEATURE_PROBES: no demonstration, evaluation, selection or keypoint-view seed) it renders the
main view and fits a ridge regression, on the first 80% of placements, from

- the convolutional stem's tokens (before the text) to the position of every cube, and
- the image tokens after fusion with the instruction's text to the position of the named cube,

then reports the held-out placements' RMSE (mm) next to predicting the mean. The same features
from a freshly initialised encoder are the control: training that taught the stem where the
cubes are beats random convolutions.

    python -m research.probe_vision --checkpoint checkpoints/default --embodiment so101 --placements 400
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from vla_core.embodiment import load_embodiment
from vla_core.evaluation.environments import sim_task
from vla_core.kinematics import RobotKinematics
from vla_core.model.batching import Observation, collate_observations
from vla_core.model.builtin_encoder import PatchEncoder
from vla_core.model.layers import CrossAttentionBlock
from vla_core.model.policy import VLAPolicy
from vla_core.seeds import FEATURE_PROBES

from research.probe_grounding import probe_arguments

PROBE_SEED_BASE = FEATURE_PROBES.start
RIDGE_PENALTIES = (1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


def render_placements(embodiment: str, placements: int) -> tuple[list[Observation], list[str], np.ndarray, np.ndarray]:
    """Observations, training-wording instructions, every cube's (x, y) and the named cube's (x, y)."""
    spec = load_embodiment(embodiment)
    definition = sim_task(embodiment, "pick_cube")
    scene = definition.make_scene(spec.cameras[0].width)
    kinematics = RobotKinematics(spec)
    observations, instructions, every_cube, named = [], [], [], []
    try:
        for seed in range(PROBE_SEED_BASE, PROBE_SEED_BASE + placements):
            scene.reset(seed)
            task = definition.draw_task(seed, scene)
            joints = scene.joint_positions()
            observations.append(Observation(scene.render(spec.main_camera.name), joints, {},
                                            tool_poses=kinematics.forward(joints), joint_velocity=np.zeros_like(joints)))
            instructions.append(task.instruction("training", seed))
            every_cube.append(np.concatenate([scene.cube(colour).position[:2] for colour in scene.colours]))
            named.append(scene.cube(task.colour).position[:2])
    finally:
        scene.close()
    return observations, instructions, np.array(every_cube), np.array(named)


@torch.no_grad()
def main_view_features(policy: VLAPolicy, embodiment: str, observations: list[Observation],
                       instructions: list[str]) -> dict[str, np.ndarray]:
    """Flattened main-view tokens of the stem and after text fusion, (N, tokens * dim) each."""
    spec = policy.embodiment(embodiment)
    batch = collate_observations(policy.config, spec, policy.normalizers[embodiment], observations, instructions)
    images = batch["main_images"][:, -1]
    encoder = policy.vision_language
    stem = encoder.vision(images)
    fused = encoder(images, batch["texts"]).tokens[:, : stem.shape[1]]
    return {"stem": stem.flatten(1).numpy(), "fused": fused.flatten(1).numpy()}


def ridge_rmse(features: np.ndarray, targets: np.ndarray, train_fraction: float = 0.8) -> tuple[float, float]:
    """Held-out RMSE (m) of the best ridge penalty (chosen on a split of the training part) and of the mean."""
    cut = int(train_fraction * len(features))
    mean, scale = features[:cut].mean(0), features[:cut].std(0) + 1e-6
    x = (features - mean) / scale
    x_train, y_train, x_test, y_test = x[:cut], targets[:cut], x[cut:], targets[cut:]

    def fit(x_fit: np.ndarray, y_fit: np.ndarray, penalty: float) -> tuple[np.ndarray, np.ndarray]:
        y_mean = y_fit.mean(0)
        gram = x_fit @ x_fit.T + penalty * np.eye(len(x_fit))  # dual form: fewer samples than features
        return x_fit.T @ np.linalg.solve(gram, y_fit - y_mean), y_mean

    def rmse(x_eval: np.ndarray, y_eval: np.ndarray, weights: np.ndarray, offset: np.ndarray) -> float:
        return float(np.sqrt(np.mean((x_eval @ weights + offset - y_eval) ** 2)))

    inner = int(0.75 * cut)
    best = min(RIDGE_PENALTIES,
               key=lambda p: rmse(x_train[inner:], y_train[inner:], *fit(x_train[:inner], y_train[:inner], p)))
    probe = rmse(x_test, y_test, *fit(x_train, y_train, best))
    baseline = float(np.sqrt(np.mean((y_test - y_train.mean(0)) ** 2)))
    return probe, baseline


def reinitialised(policy: VLAPolicy) -> VLAPolicy:
    """A copy whose main-view stem and fusion are freshly initialised (the text encoder stays)."""
    fresh, config = copy.deepcopy(policy), policy.config
    torch.manual_seed(0)
    fresh.vision_language.vision = PatchEncoder(config.image_size, config.vision_width, config.hidden_size)
    fresh.vision_language.fusion = CrossAttentionBlock(config.hidden_size, config.num_heads)
    return fresh


def main() -> None:
    args = probe_arguments(__doc__.split("\n\n")[0], placements=400)
    observations, instructions, every_cube, named = render_placements(args.embodiment, args.placements)
    trained = VLAPolicy.from_pretrained(args.checkpoint).eval()
    print(f"{args.checkpoint} on {args.embodiment}: {args.placements} placements from seed {PROBE_SEED_BASE}, "
          f"ridge probes fitted on the first 80%, RMSE (mm) on the rest")
    print("| encoder | stem -> every cube (x, y) | fused -> named cube (x, y) |")
    print("| --- | --- | --- |")
    for label, policy in (("trained", trained), ("freshly initialised", reinitialised(trained).eval())):
        features = main_view_features(policy, args.embodiment, observations, instructions)
        stem, stem_mean = ridge_rmse(features["stem"], every_cube)
        fused, fused_mean = ridge_rmse(features["fused"], named)
        print(f"| {label} | {1000 * stem:.1f} (mean {1000 * stem_mean:.1f}) | {1000 * fused:.1f} "
              f"(mean {1000 * fused_mean:.1f}) |")


if __name__ == "__main__":
    main()
