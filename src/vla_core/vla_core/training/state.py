"""Resumable training state, without pickle: what `--resume` needs beyond the policy checkpoint.

A training-state directory holds
- `model.safetensors`: the trained module's weights as they are during training (with LoRA
  adapters unmerged; referenced pretrained weights left out, as in checkpoints),
- `optimizer.safetensors` + `optimizer.json`: AdamW's moments and step counts, keyed by
  parameter name (so a run on another number of processes, or with FSDP, maps them back), and
  its parameter groups,
- `rng.safetensors`: torch's CPU (and CUDA) generator states,
- `state.json`: the step reached, the world size, and the training config.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

MODEL_FILE, OPTIMIZER_TENSORS, OPTIMIZER_JSON = "model.safetensors", "optimizer.safetensors", "optimizer.json"
RNG_FILE, STATE_FILE = "rng.safetensors", "state.json"
_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


class TrainingStateError(ValueError):
    """A training-state directory that cannot be resumed from; the message names the file."""


def gather_state(policy: nn.Module, wrapped: nn.Module, optimizer: torch.optim.Optimizer,
                 skipped_prefixes: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Full model and optimizer state on CPU, optimizer state keyed by parameter name.

    `wrapped` is what trains (the policy, DDP or FSDP around it). Every rank must call this:
    under FSDP it gathers the shards (torch.distributed.checkpoint's state-dict API); otherwise
    the policy's own parameters are the full ones.
    """
    if _is_fsdp(wrapped):
        model = get_model_state_dict(wrapped, options=_FULL)
        optim = get_optimizer_state_dict(wrapped, optimizer, options=_FULL)
    else:
        model = {name: t.detach().cpu() for name, t in policy.state_dict().items()}
        names = {id(p): name for name, p in policy.named_parameters()}
        order = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
        native = optimizer.state_dict()
        optim = {"state": {order[i]: {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
                           for i, s in native["state"].items()},
                 "param_groups": [{**g, "params": [order[i] for i in g["params"]]} for g in native["param_groups"]]}
    return {n: t for n, t in model.items() if not n.startswith(skipped_prefixes)}, optim


def _is_fsdp(module: nn.Module) -> bool:
    from torch.distributed.fsdp import FullyShardedDataParallel

    return isinstance(module, FullyShardedDataParallel)


def save_training_state(directory: Path, model: dict[str, torch.Tensor], optimizer: dict[str, Any], step: int,
                        world_size: int, config: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    save_file({name: t.contiguous() for name, t in model.items()}, str(directory / MODEL_FILE))
    tensors, entries = {}, {}
    for name, state in optimizer["state"].items():
        for key, value in state.items():
            if not isinstance(value, torch.Tensor):
                raise TrainingStateError(f"optimizer state {name}.{key} is not a tensor ({type(value).__name__})")
            tensors[f"{name}::{key}"] = value.detach().cpu().contiguous()
            entries.setdefault(name, []).append(key)
    save_file(tensors, str(directory / OPTIMIZER_TENSORS))
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()}
              for group in optimizer["param_groups"]]
    (directory / OPTIMIZER_JSON).write_text(json.dumps({"param_groups": groups, "state_keys": entries}, indent=1))
    rng = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"torch_cuda_{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())})
    save_file(rng, str(directory / RNG_FILE))
    (directory / STATE_FILE).write_text(json.dumps({"step": step, "world_size": world_size, "config": config},
                                                   indent=2) + "\n")


def read_state_info(directory: Path) -> dict[str, Any]:
    """`state.json`: step, world_size, config."""
    path = directory / STATE_FILE
    if not path.is_file():
        raise TrainingStateError(f"{path} is missing: {directory} is not a training-state directory")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise TrainingStateError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(info, dict) or not {"step", "config"} <= set(info):
        raise TrainingStateError(f"{path} must hold 'step' and 'config'")
    return info


def _load(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise TrainingStateError(f"training-state file {path} is missing")
    return load_file(str(path))


def restore_training_state(directory: Path, policy: nn.Module, wrapped: nn.Module,
                           optimizer: torch.optim.Optimizer) -> int:
    """Load weights, optimizer and RNG states into an already built policy and optimizer (built as
    the saved run built them); returns the step to continue from."""
    info = read_state_info(directory)
    model = _load(directory / MODEL_FILE)
    unknown = sorted(set(model) - set(policy.state_dict()))
    if unknown:
        raise TrainingStateError(f"{directory / MODEL_FILE}: tensors {unknown[:5]} do not exist in the model built "
                                 "from the config (another architecture or LoRA setting?)")
    layout = json.loads((directory / OPTIMIZER_JSON).read_text())
    tensors = _load(directory / OPTIMIZER_TENSORS)
    state = {name: {key: tensors[f"{name}::{key}"] for key in keys} for name, keys in layout["state_keys"].items()}
    if _is_fsdp(wrapped):
        set_model_state_dict(wrapped, model, options=StateDictOptions(full_state_dict=True, strict=False))
        set_optimizer_state_dict(wrapped, optimizer, {"state": state, "param_groups": layout["param_groups"]},
                                 options=StateDictOptions(full_state_dict=True))
    else:
        policy.load_state_dict(model, strict=False)  # referenced pretrained weights are not stored
        order = [name for group in layout["param_groups"] for name in group["params"]]
        mine = {id(p): name for name, p in policy.named_parameters()}
        built = [mine[id(p)] for group in optimizer.param_groups for p in group["params"]]
        if built != order:
            raise TrainingStateError(f"{directory / OPTIMIZER_JSON}: the optimizer was built over other parameters "
                                     f"({len(order)} saved, {len(built)} now); resume with the saved config")
        index = {name: i for i, name in enumerate(order)}
        start = 0
        groups = []
        for group in layout["param_groups"]:
            groups.append({**group, "params": list(range(start, start + len(group["params"])))})
            start += len(group["params"])
        optimizer.load_state_dict({"state": {index[name]: values for name, values in state.items()},
                                   "param_groups": groups})
    rng = _load(directory / RNG_FILE)
    torch.set_rng_state(rng["torch_cpu"])
    if torch.cuda.is_available():
        cuda = [rng[f"torch_cuda_{i}"] for i in range(torch.cuda.device_count()) if f"torch_cuda_{i}" in rng]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
    return int(info["step"])
