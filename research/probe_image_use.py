"""Does a checkpoint read its camera views? Sampled-chunk error on demonstration frames with
the views or the joint state taken from another episode.

From the last N episodes of a dataset it takes six chunk starts per episode (in the first
half second, and spread over the whole episode) and scores the L1 error of flow-sampled chunks
(normalised units, three noise seeds, as `vla train`'s validation) with the true observation,
with the main and wrist views of the same phase of another episode (together, and each alone:
only the main view shows where the named cube is before the arm is near), with that episode's state,
and with the state zeroed (with and without swapped views). A policy that uses its views gets
worse when they come from a scene with the cubes elsewhere.

    python -m research.probe_image_use --checkpoint checkpoints/default --dataset outputs/more/so101_b --episodes 16
"""
from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch

from vla_core.kinematics import RobotKinematics
from vla_core.model.policy import VLAPolicy
from vla_core.training.config import DataSource
from vla_core.training.datasets import load_source
from vla_core.training.samples import EpisodeChunks, merge_batches, sample_batch

STARTS_PER_EPISODE = 6
NOISE_SEEDS = 3
OPENING_SECONDS = 0.5


def _swap(*keys: str) -> Callable[[dict, torch.Tensor], None]:
    """An ablation that gives each sample these batch entries of its partner."""
    def swap(batch: dict, partner: torch.Tensor) -> None:
        for key in keys:
            batch[key] = batch[key][partner]
    return swap


def _zero_state(batch: dict, partner: torch.Tensor) -> None:
    batch["state"] = torch.zeros_like(batch["state"])


_swap_views = _swap("main_images", "wrist_images")
ABLATIONS: dict[str, Callable[[dict, torch.Tensor], None]] = {
    "true": lambda batch, partner: None,
    "views swapped": _swap_views,
    "main view swapped": _swap("main_images"),
    "wrist views swapped": _swap("wrist_images"),
    "state swapped": _swap("state"),
    "state zeroed": _zero_state,
    "state zeroed, views swapped": lambda batch, partner: (_zero_state(batch, partner), _swap_views(batch, partner)),
}


@torch.no_grad()
def sampled_l1(policy: VLAPolicy, chunks: list[EpisodeChunks], keys: list[tuple[int, int]],
               ablate: Callable[[dict, torch.Tensor], None]) -> float:
    """Mean L1 of sampled chunks at (episode, frame) keys after `ablate` rewrote the batch; the
    partner of each sample is the one half the batch away (another episode, same phase)."""
    batch = merge_batches([sample_batch(policy.config, chunks[e], t, policy.normalizers[chunks[e].spec.name])
                           for e, t in keys])
    ablate(batch, torch.roll(torch.arange(len(keys)), len(keys) // 2))
    errors = []
    for seed in range(NOISE_SEEDS):
        sampled = policy.sample_actions(batch, generator=torch.Generator().manual_seed(seed)).float()
        errors.append(float(((sampled - batch["actions"]).abs() * batch["action_mask"]).sum()
                            / batch["action_mask"].sum()))
    return float(np.mean(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--dataset", required=True, help="a LeRobot v3.0 dataset of one embodiment the policy knows")
    parser.add_argument("--episodes", type=int, default=16, help="its last N episodes are used")
    args = parser.parse_args()
    torch.set_num_threads(2)
    policy = VLAPolicy.from_pretrained(args.checkpoint).eval()
    episodes, recorded = load_source(DataSource(args.dataset), policy.config)
    if recorded.name not in policy.embodiments:
        raise SystemExit(f"{args.dataset} holds {recorded.name} episodes; {args.checkpoint} knows "
                         f"{sorted(policy.embodiments)}")
    profile = policy.embodiments[recorded.name]  # its action space and chunk size, as `vla train` used them
    kinematics = RobotKinematics(profile)
    chunks = [EpisodeChunks.build(episode, profile, kinematics) for episode in episodes[-args.episodes:]]
    print(f"{args.checkpoint} on the last {len(chunks)} episodes of {args.dataset}: sampled-chunk L1 "
          "(normalised units)")
    print("| chunk starts | " + " | ".join(ABLATIONS) + " |")
    print("| --- |" + " --- |" * len(ABLATIONS))
    opening = round(OPENING_SECONDS * profile.control_rate_hz)  # frames: 15 on the SO-101, 25 on ALOHA
    for label, last_frame in ((f"first {OPENING_SECONDS} s", lambda c: min(opening, len(c)) - 1),
                              ("whole episode", lambda c: len(c) - 1)):
        keys = [(e, int(t)) for e, c in enumerate(chunks)
                for t in np.linspace(0, last_frame(c), STARTS_PER_EPISODE).astype(int)]
        scores = [sampled_l1(policy, chunks, keys, ablate) for ablate in ABLATIONS.values()]
        print(f"| {label} | " + " | ".join(f"{score:.3f}" for score in scores) + " |")


if __name__ == "__main__":
    main()
