"""Several processes, one training: the launcher's environment in, DDP or FSDP around the policy.

`torchrun` and `accelerate launch` both export WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT; with WORLD_SIZE > 1 the process group is initialised from them (nccl on CUDA,
gloo on CPU). Every rank holds the whole dataset and draws its own micro-batches from the
mixture (vla_core.training.mixture), so no DistributedSampler is needed; rank 0 alone writes
files. FSDP (`strategy: fsdp`) shards parameters, gradients and optimizer state for models that
do not fit one device; DDP replicates them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistributedContext:
    world_size: int
    rank: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum over ranks (in place on a copy); identity in one process."""
        if not self.active:
            return values
        reduced = values.to(self.device).clone()
        dist.all_reduce(reduced)
        return reduced.cpu()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be an integer (set by torchrun / "
                         "accelerate launch)") from None


def init_distributed(device: str | None = None) -> DistributedContext:
    """The process's place in the run; initialises the process group when WORLD_SIZE > 1.

    `device`: "cpu" or "cuda" to force one; default CUDA (this rank's LOCAL_RANK GPU) when present.
    """
    world_size, rank, local_rank = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    use_cuda = torch.cuda.is_available() if device is None else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but torch sees no CUDA device")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        target = torch.device("cuda", local_rank)
    else:
        target = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if name not in os.environ:
                raise RuntimeError(f"WORLD_SIZE={world_size} but {name} is not set: start with torchrun or "
                                   "accelerate launch")
        dist.init_process_group("nccl" if use_cuda else "gloo", device_id=target if use_cuda else None)
    return DistributedContext(world_size, rank, local_rank, target)


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap_for_training(policy: nn.Module, context: DistributedContext, strategy: str) -> nn.Module:
    """The module the training step calls: the policy itself in one process, else DDP or FSDP.

    DDP records which parameters train when it is built, so the trainer wraps again whenever that
    set changes (X-VLA's phase switch). Unused parameters are expected: a micro-batch without an
    embodiment leaves that embodiment's soft prompt without gradient.
    """
    if not context.active:
        return policy
    device_ids = [context.local_rank] if context.device.type == "cuda" else None
    if strategy == "ddp":
        return nn.parallel.DistributedDataParallel(policy, device_ids=device_ids, find_unused_parameters=True)
    from torch.distributed.fsdp import FullyShardedDataParallel, ShardingStrategy
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    from vla_core.model.action_expert import ExpertBlock

    return FullyShardedDataParallel(policy, auto_wrap_policy=ModuleWrapPolicy({ExpertBlock}),
                                    sharding_strategy=ShardingStrategy.FULL_SHARD, use_orig_params=True,
                                    device_id=context.device if context.device.type == "cuda" else None)
