"""Does a checkpoint's first chunk follow the named cube? A check of visual grounding.

For N placements (selection seeds, vla_core.seeds.SELECTION: neither trained nor evaluated on) it resets the
simulation, asks the checkpoint and the scripted teleoperator for their first chunk from the
same observation, and compares where each chunk's last reachable row puts the end effector(s).
A policy that finds the cube moves with it: its end points correlate with the teleoperator's.
A checkpoint with instructed keypoints (`main_keypoints`) also gets keypoint 0's distance from
the named cube in that first, uncompressed camera frame, under the training wording and a
held-out paraphrase (RMS, in image half-widths; vla_core.training.keypoint_supervision).

    python -m research.probe_grounding --checkpoint checkpoints/default --embodiment so101 --placements 16
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from vla_core.embodiment import load_embodiment
from vla_core.evaluation.environments import sim_task
from vla_core.evaluation.policies import CheckpointPolicy, PolicyUnderTest, ScriptedOracle
from vla_core.model.batching import Observation, image_tensor
from vla_core.model.policy import VLAPolicy
from vla_core.runtime.decoding import ChunkDecoder
from vla_core.seeds import SELECTION

PROBE_SEED_BASE = SELECTION.start


@torch.no_grad()
def keypoint_offset(policy: VLAPolicy, image: np.ndarray, instruction: str, embodiment: str,
                    truth: np.ndarray) -> np.ndarray:
    """Keypoint 0 minus the named cube's image position (2,), in image half-widths."""
    view = image_tensor(image, policy.config.image_size, "main image")[None]
    text = policy.embodiment(embodiment).text_prompt(instruction)
    return policy.eval().vision_language.keypoints(view, [text])[0, 0].numpy() - truth


def first_chunk_end_points(checkpoint: str, embodiment: str, placements: int
                           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(placements, 3 * arms) end-effector end points of the first chunk, per policy; and with
    keypoints, keypoint 0's offsets from the named cube (placements, 2) per wording."""
    spec = load_embodiment(embodiment)
    definition = sim_task(embodiment, "pick_cube")
    scene = definition.make_scene(spec.cameras[0].width)
    decoder = ChunkDecoder(spec)
    policies: dict[str, PolicyUnderTest] = {"policy": CheckpointPolicy.load(checkpoint, [embodiment]),
                                            "teleoperator": ScriptedOracle(spec)}
    ends: dict[str, list[np.ndarray]] = {name: [] for name in policies}
    model = policies["policy"].policy
    offsets: dict[str, list[np.ndarray]] = {"training": [], "held_out": []} if model.config.main_keypoints else {}
    try:
        for seed in range(PROBE_SEED_BASE, PROBE_SEED_BASE + placements):
            scene.reset(seed)
            task = definition.draw_task(seed, scene)
            joints = scene.joint_positions()
            images = {camera.name: scene.render(camera.name) for camera in spec.cameras}
            start = decoder.start_from_joints(joints)
            observation = Observation(images[spec.main_camera.name], joints,
                                      {camera.name: images[camera.name] for camera in spec.wrist_cameras},
                                      tool_poses=decoder.tool_poses(start), joint_velocity=np.zeros_like(joints))
            truth = scene.image_position(spec.main_camera.name, scene.cube(task.colour).position)
            for wording, rows in offsets.items():
                rows.append(keypoint_offset(model, images[spec.main_camera.name],
                                            task.instruction(wording, seed), embodiment, truth))
            for name, policy in policies.items():
                policy.start_episode(scene, task, seed)
                chunk = policy.predict_chunk(observation, task.instruction("training", seed), embodiment, None, seed)
                targets = decoder.joint_targets(chunk.actions, start, joints).positions
                reachable = targets[np.isfinite(targets).all(axis=1)]
                ends[name].append(decoder.end_effector_positions(reachable[-1] if len(reachable) else joints).ravel())
    finally:
        scene.close()
    return ({name: np.array(rows) for name, rows in ends.items()},
            {wording: np.array(rows) for wording, rows in offsets.items()})


def probe_arguments(description: str, placements: int) -> argparse.Namespace:
    """--checkpoint, --embodiment and --placements, the arguments every probe script takes; one
    thread, as the policy node runs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--embodiment", required=True)
    parser.add_argument("--placements", type=int, default=placements)
    args = parser.parse_args()
    torch.set_num_threads(1)
    return args


def main() -> None:
    args = probe_arguments(__doc__.split("\n\n")[0], placements=16)
    ends, offsets = first_chunk_end_points(args.checkpoint, args.embodiment, args.placements)
    policy, teleoperator = ends["policy"], ends["teleoperator"]
    correlation = [np.corrcoef(policy[:, k], teleoperator[:, k])[0, 1] for k in range(policy.shape[1])]
    print(f"{args.checkpoint} on {args.embodiment}, {args.placements} placements from seed {PROBE_SEED_BASE}: "
          "first chunk's end point (x, y, z per arm)")
    print(f"  spread, policy (mm):       {np.round(1000 * policy.std(axis=0), 1)}")
    print(f"  spread, teleoperator (mm): {np.round(1000 * teleoperator.std(axis=0), 1)}")
    print(f"  correlation:               {np.round(correlation, 2)}")
    for wording, rows in offsets.items():
        print(f"  keypoint 0 from the named cube, {wording} wording (RMS, half-widths): "
              f"{np.sqrt((rows ** 2).sum(axis=1).mean()):.3f}")


if __name__ == "__main__":
    main()
