"""X-VLA's validation proxy: the L1 error of flow-sampled chunks against the held-out ground truth.

Scored in normalised units over the valid entries (each embodiment's channels, steps before the
episode's end), so robots with metres, radians and binary grippers add up on one scale. The
chunk starts are a fixed, evenly spread set of held-out frames and the noise is seeded, so two
validations of the same weights give the same number; with several processes each rank scores
its share and the sums are reduced.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from vla_core.model.configuration import PolicyConfig
from vla_core.model.policy import VLAPolicy
from vla_core.normalization import EmbodimentNormalizers
from vla_core.training.distributed import DistributedContext
from vla_core.training.mixture import derived_seed
from vla_core.training.samples import EpisodeChunks, merge_batches, sample_batch


def validation_starts(held_out: Sequence[Sequence[EpisodeChunks]], count: int) -> list[tuple[int, int, int]]:
    """Up to `count` (dataset, episode, frame) keys spread evenly over all held-out frames."""
    keys = [(d, e, t) for d, dataset in enumerate(held_out) for e, chunks in enumerate(dataset)
            for t in range(len(chunks))]
    if len(keys) <= count:
        return keys
    return [keys[round(i * (len(keys) - 1) / (count - 1))] if count > 1 else keys[0] for i in range(count)]


@torch.no_grad()
def validation_l1(policy: VLAPolicy, config: PolicyConfig, held_out: Sequence[Sequence[EpisodeChunks]],
                  normalizers: dict[str, EmbodimentNormalizers], keys: Sequence[tuple[int, int, int]],
                  context: DistributedContext, seed: int, batch_size: int, autocast: torch.autocast) -> dict[str, float]:
    """{"val_l1": mean over everything, "val_l1/<embodiment>": per prompt name}; {} without held-out data."""
    names = sorted({held_out[d][e].spec.name for d, e, _ in keys})
    sums = torch.zeros(len(names), 2, dtype=torch.float64)  # (abs error sum, valid entries) per name
    mine = list(keys)[context.rank::context.world_size]
    was_training = policy.training
    policy.eval()
    for first in range(0, len(mine), batch_size):
        part = mine[first:first + batch_size]
        batch = merge_batches([sample_batch(config, held_out[d][e], t, normalizers[held_out[d][e].spec.name])
                               for d, e, t in part])
        generator = torch.Generator().manual_seed(derived_seed(seed, context.rank, first))
        with autocast:
            sampled = policy.sample_actions(batch, generator=generator).float().cpu()
        error = (sampled - batch["actions"]).abs() * batch["action_mask"]
        for row, name in enumerate(batch["embodiments"]):
            sums[names.index(name), 0] += error[row].sum().double()
            sums[names.index(name), 1] += batch["action_mask"][row].sum()
    policy.train(was_training)
    sums = context.all_reduce_sum(sums)
    if not names or sums[:, 1].sum() == 0:
        return {}
    result = {"val_l1": float(sums[:, 0].sum() / sums[:, 1].sum())}
    result.update({f"val_l1/{name}": float(s[0] / s[1]) for name, s in zip(names, sums) if s[1] > 0})
    return result
