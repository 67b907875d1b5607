"""Parameter-efficient adaptation of a trained policy to a new robot or task.

- X-VLA's two-step adaptation: first warm up the new embodiment's soft prompt and the action
  head's input/output layers with everything else frozen, then train jointly.
- LoRA (through peft) on the action expert's attention and MLP projections, and optionally on
  the vision-language encoder's; merged back into plain Linear layers before saving.
- Learning-rate groups: the vision-language part, the soft prompts, and the rest.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from vla_core.checkpoint import pretrained_prefix
from vla_core.model.policy import VLAPolicy

LORA_TARGETS = ("q", "k", "v", "out", "fc1", "fc2")  # vla_core.model.layers' Attention and FeedForward


def freeze_for_prompt_warmup(policy: VLAPolicy, embodiment: str) -> list[str]:
    """Leave trainable only `embodiment`'s soft prompt and the expert's input/output layers.

    Returns the names of the trainable parameters.
    """
    policy.embodiment(embodiment)  # raises with the known names if unknown
    policy.requires_grad_(False)
    policy.expert.prompts[embodiment].requires_grad_(True)
    for module in (policy.expert.step_in, policy.expert.head, policy.expert.gripper_head, policy.expert.norm_out):
        if module is not None:
            module.requires_grad_(True)
    return [name for name, p in policy.named_parameters() if p.requires_grad]


def unfreeze_for_joint_training(policy: VLAPolicy) -> None:
    """Step two: everything trains again, except pretrained weights configured frozen."""
    policy.requires_grad_(True)
    if policy.config.text_encoder_frozen:
        prefix = pretrained_prefix(policy.config)
        for name, parameter in policy.named_parameters():
            if name.startswith(prefix):
                parameter.requires_grad_(False)


def _lora_targets(module: nn.Module, prefix: str, skip: str | None = None) -> list[str]:
    """Full names of the Linear layers named like attention/MLP projections under `module`."""
    return [f"{prefix}{name}" for name, layer in module.named_modules()
            if isinstance(layer, nn.Linear) and name.rsplit(".", 1)[-1] in LORA_TARGETS
            and not (skip and f"{prefix}{name}".startswith(skip))]


def apply_lora(policy: VLAPolicy, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0,
               include_vision_language: bool = False) -> list[str]:
    """Inject LoRA adapters (peft) into the expert blocks' attention and MLP projections, and
    with `include_vision_language` into the vision-language stream's (never into the referenced
    pretrained weights, which checkpoints do not store). Afterwards only the adapters, the soft
    prompts and the action head train. Returns the names of the wrapped modules."""
    from peft import LoraConfig, inject_adapter_in_model

    targets = _lora_targets(policy.expert.blocks, "expert.blocks.")
    if include_vision_language:
        targets += _lora_targets(policy.vision_language, "vision_language.", skip=pretrained_prefix(policy.config))
    policy.requires_grad_(False)
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets),
                            policy)
    for name, parameter in policy.named_parameters():
        if "lora_" in name:
            parameter.requires_grad_(True)
    policy.expert.prompts.requires_grad_(True)
    policy.expert.head.requires_grad_(True)
    return targets


def merge_lora(policy: VLAPolicy) -> list[str]:
    """Fold every LoRA adapter into its base Linear layer and drop the adapter, so the policy saves
    and loads as a plain one (vla_core.checkpoint refuses adapters). Returns the merged modules.
    Merged weights keep the trainable flag their base layer had (frozen after `apply_lora`)."""
    from peft.tuners.lora import LoraLayer

    merged = []
    for name, module in list(policy.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent, _, child = name.rpartition(".")
            setattr(policy.get_submodule(parent), child, module.get_base_layer())
            merged.append(name)
    return merged


def parameter_groups(policy: VLAPolicy, learning_rate: float, vision_language_scale: float = 0.1,
                     prompt_scale: float = 1.0, weight_decay: float = 0.01) -> list[dict]:
    """Optimizer groups: vision-language (lr x vision_language_scale), soft prompts (lr x
    prompt_scale, no weight decay), the rest (lr). Frozen parameters are left out."""
    def trainable(parameters: Iterable[tuple[str, torch.nn.Parameter]]) -> list[torch.nn.Parameter]:
        return [p for _, p in parameters if p.requires_grad]

    prompt_ids = {id(p) for p in policy.expert.prompts.parameters()}
    vision_ids = {id(p) for p in policy.vision_language.parameters()}
    rest = [(n, p) for n, p in policy.named_parameters() if id(p) not in prompt_ids | vision_ids]
    groups = [
        {"name": "vision_language", "params": trainable(policy.vision_language.named_parameters()),
         "lr": learning_rate * vision_language_scale, "weight_decay": weight_decay},
        {"name": "soft_prompts", "params": trainable(policy.expert.prompts.named_parameters()),
         "lr": learning_rate * prompt_scale, "weight_decay": 0.0},
        {"name": "rest", "params": trainable(rest), "lr": learning_rate, "weight_decay": weight_decay},
    ]
    return [group for group in groups if group["params"]]
