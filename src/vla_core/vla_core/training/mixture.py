"""Which samples each optimizer step draws, on which process (X-VLA's data mixture).

Every step draws a global batch of (dataset, episode, frame) keys: the dataset by its weight,
then an episode uniformly within it (trajectories count equally, however long), then a frame
uniformly within the episode. The draw depends only on (seed, step), so a resumed run sees the
same data it would have seen, and so does a run on another number of processes: the global
batch is cut into micro-batches, and micro-batch m of a step goes to rank m % world_size.
Each micro-batch carries its own seed, from (seed, step, m), for the noise and augmentation.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

Key = tuple[int, int, int]  # (dataset, episode, frame)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers, well mixed (numpy's SeedSequence), for torch.Generator."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


@dataclass(frozen=True)
class MicroBatch:
    step: int
    index: int  # m: position within the step's global batch
    seed: int  # for this micro-batch's noise and augmentation
    keys: list[Key]


class MixtureSampler:
    """Deterministic global batches over a weighted mixture, sharded over ranks."""

    def __init__(self, episode_lengths: Sequence[Sequence[int]], weights: Sequence[float], seed: int,
                 batch_size: int, micro_batch_size: int, world_size: int = 1, rank: int = 0) -> None:
        if len(episode_lengths) != len(weights) or not episode_lengths:
            raise ValueError(f"{len(episode_lengths)} datasets but {len(weights)} weights; need one weight each")
        for d, lengths in enumerate(episode_lengths):
            if not lengths or min(lengths) < 1:
                raise ValueError(f"dataset {d} has no training episode with frames")
        if batch_size % (micro_batch_size * world_size):
            raise ValueError(f"batch_size {batch_size} is not a multiple of micro_batch_size {micro_batch_size} x "
                             f"world_size {world_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        weights = np.asarray(weights, dtype=np.float64)
        self.probabilities = weights / weights.sum()
        self.lengths = [np.asarray(lengths) for lengths in episode_lengths]
        self.seed, self.batch_size, self.micro_batch_size = seed, batch_size, micro_batch_size
        self.world_size, self.rank = world_size, rank

    def global_batch(self, step: int) -> list[Key]:
        rng = np.random.default_rng([self.seed, step])
        datasets = rng.choice(len(self.lengths), size=self.batch_size, p=self.probabilities)
        keys = []
        for d in datasets:
            episode = int(rng.integers(len(self.lengths[d])))
            keys.append((int(d), episode, int(rng.integers(self.lengths[d][episode]))))
        return keys

    def micro_batches(self, step: int) -> list[MicroBatch]:
        """This rank's micro-batches of `step`, in the order they accumulate."""
        keys, size = self.global_batch(step), self.micro_batch_size
        return [MicroBatch(step, m, derived_seed(self.seed, step, m), keys[m * size:(m + 1) * size])
                for m in range(self.rank, self.batch_size // size, self.world_size)]

    def iterate(self, start_step: int, end_step: int) -> Iterator[MicroBatch]:
        for step in range(start_step, end_step):
            yield from self.micro_batches(step)
